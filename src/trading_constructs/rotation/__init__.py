"""AWS Lambda handler code for Secrets Manager secret rotation, and how it is packaged.

The handler modules (``api_key``, ``postgres``) are shipped in the wheel as Lambda function
source and run inside the rotation functions; the CDK constructs never import them. They depend
on the Python standard library and ``boto3``, which the AWS Lambda Python runtime provides, and
``postgres`` on ``pg8000`` (pure Python), which is bundled into its asset.

``packaging`` runs in the CDK app at synth time: it builds each function's asset folder from a
handler module and the installed files of the distributions it needs.
"""
