"""`from skewcheck import plugin` in a locustfile: the plugin lives in skewcheck.locust."""

from skewcheck.locust import *  # noqa: F401,F403
