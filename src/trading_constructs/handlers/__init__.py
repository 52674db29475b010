"""AWS Lambda handler code shipped in the wheel, apart from the constructs that deploy it.

Each folder is the complete source of one function's asset and runs in Lambda as top-level
modules (``/var/task/<module>.py``):

``api_key_rotation``
    Secrets Manager rotation of an API-key secret (handler ``api_key.handler``).
``postgres_rotation``
    Secrets Manager rotation of PostgreSQL credentials (handler ``postgres.handler``), with
    ``pg8000`` and its pure-Python dependencies bundled.
``mesh_certificate_issuer``
    The App Mesh mutual-TLS certificate issuer (handler ``issuer.handler``).

``_shared`` holds what the functions share, once: the JSON-lines logger (``jsonlog``) and the
four-step Secrets Manager rotation protocol (``secret_rotation``). ``trading_constructs.assets``
copies the shared modules a function names into its asset at synth time, so every deployed
asset is self-contained while the source exists once.

Handler modules import the standard library, ``boto3`` (which the Lambda Python runtime
provides), their own folder, ``_shared`` and their bundled distributions; never ``aws_cdk`` or
construct code. Construct code never imports them: it only packages their files.
"""
