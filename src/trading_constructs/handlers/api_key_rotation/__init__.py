"""The API-key rotation function's asset source (handler ``api_key.handler``)."""
