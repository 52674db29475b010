"""Example microservices of the trading platform; standard library only so images need no pip."""
