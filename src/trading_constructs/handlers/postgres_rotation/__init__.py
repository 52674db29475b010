"""The PostgreSQL rotation function's asset source (handler ``postgres.handler``)."""
