"""JSON schemas for identity request bodies."""

from __future__ import annotations

from typing import Any

_ref: dict[str, Any] = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
_user = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "domain": _ref,
                                          "password": {"type": "string"}}}

AUTH: dict[str, Any] = {
    "type": "object",
    "required": ["auth"],
    "properties": {
        "auth": {
            "type": "object",
            "required": ["identity"],
            "properties": {
                "identity": {
                    "type": "object",
                    "required": ["methods"],
                    "properties": {
                        "methods": {"type": "array", "items": {"type": "string"}},
                        "password": {"type": "object", "required": ["user"], "properties": {"user": _user}},
                        "token": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                        "application_credential": {"type": "object", "properties": {
                            "id": {"type": "string"}, "name": {"type": "string"}, "secret": {"type": "string"},
                            "user": _user}},
                    },
                },
                "scope": {
                    "oneOf": [
                        {"type": "string", "enum": ["unscoped"]},
                        {"type": "object", "properties": {
                            "project": {"type": "object", "properties": {
                                "id": {"type": "string"}, "name": {"type": "string"}, "domain": _ref}},
                            "domain": _ref,
                            "system": {"type": "object"},
                            "OS-TRUST:trust": {"type": "object", "required": ["id"],
                                               "properties": {"id": {"type": "string"}}},
                        }},
                    ]
                },
            },
        }
    },
}

AUTH_V2: dict[str, Any] = {
    "type": "object",
    "required": ["auth"],
    "properties": {
        "auth": {
            "type": "object",
            "properties": {
                "passwordCredentials": {"type": "object", "required": ["username", "password"], "properties": {
                    "username": {"type": "string"}, "password": {"type": "string"}}},
                "token": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                "tenantName": {"type": "string"},
                "tenantId": {"type": "string"},
            },
            "oneOf": [{"required": ["passwordCredentials"]}, {"required": ["token"]}],
        }
    },
}
