"""AWS Lambda handler code for Secrets Manager secret rotation.

The modules in this package are shipped in the wheel as Lambda function source and run
inside the rotation function; the CDK constructs never import them. They depend only on
the Python standard library and ``boto3``, which the AWS Lambda Python runtime provides.
"""
