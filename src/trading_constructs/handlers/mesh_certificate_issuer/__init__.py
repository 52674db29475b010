"""The mesh certificate issuer's asset source (handler ``issuer.handler``).

The platform CA's private key stays in AWS KMS (certificates are signed with ``kms:Sign``) and the
X.509 DER encoding is written here, in ``der`` and ``x509``: ``x509``'s module docstring says why
it is not a library.
"""
