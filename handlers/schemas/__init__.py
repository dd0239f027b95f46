"""marshmallow schemas: one per resource and direction. They validate bodies, render responses
and are the source of the OpenAPI document."""
