"""AWS Lambda handler code that issues and renews the service mesh's mutual-TLS certificates.

This folder is the Lambda asset (handler ``issuer.handler``) and is shipped in the wheel as
function source; the CDK constructs never import it. The modules depend only on the Python
standard library and ``boto3``, which the AWS Lambda Python runtime provides: the platform CA's
private key stays in AWS KMS (certificates are signed with ``kms:Sign``) and the X.509 DER
encoding is written by hand in ``der`` and ``x509``.

In the Lambda runtime the modules are top-level (``issuer``, ``x509``, ``der``); in the wheel they
are ``trading_constructs.mtls.*``. Each module imports its siblings in a way that works in both.
"""
