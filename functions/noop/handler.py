"""The baseline: does nothing, so the cost of the stack itself can be measured."""


def handle(event, context):
    return {"statusCode": 200, "body": "ok", "headers": {"Content-Type": "text/plain"}}


def build(settings=None):
    """Nothing to wire: the handler is `handle` itself."""
    return handle
