"""The versioned JSON API (/api/v1): bearer tokens, the screens' operations and permissions, an OpenAPI 3.1 description."""
