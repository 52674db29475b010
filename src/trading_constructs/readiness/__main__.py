"""``python -m trading_constructs.readiness cdk.out``."""

from trading_constructs.readiness.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
