"""The rules of domain-specific configuration: a domain may set its own ``identity`` and ``ldap`` options
(Keystone's whitelist); ``ldap.password`` is stored but never shown. The defaults are the options' values for
domains without their own. Every function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.identity.models import DomainConfig
from tinystack.identity.resource_common import get_domain

# group -> option -> default value
DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com", "query_scope": "one",
        "page_size": 0, "alias_dereferencing": "default", "debug_level": None, "chase_referrals": None,
        "user_tree_dn": None, "user_filter": None, "user_objectclass": "inetOrgPerson", "user_id_attribute": "cn",
        "user_name_attribute": "sn", "user_description_attribute": "description", "user_mail_attribute": "mail",
        "user_enabled_attribute": "enabled", "user_enabled_invert": False, "user_enabled_mask": 0,
        "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None, "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None, "user_additional_attribute_mapping": [],
        "group_tree_dn": None, "group_filter": None, "group_objectclass": "groupOfNames",
        "group_id_attribute": "cn", "group_name_attribute": "ou", "group_member_attribute": "member",
        "group_members_are_ids": False, "group_desc_attribute": "description", "group_attribute_ignore": [],
        "group_additional_attribute_mapping": [], "tls_cacertfile": None, "tls_cacertdir": None,
        "use_tls": False, "tls_req_cert": "demand", "use_pool": True, "pool_size": 10,
    },
}
SENSITIVE = {"ldap": {"password"}}


def invalid(reason: str) -> errors.Forbidden:
    return errors.Forbidden(f"Invalid domain specific configuration: {reason}")


def _check(group: str, option: str | None = None) -> None:
    if group not in DEFAULTS:
        raise invalid(f"Group {group} is not supported for domain specific configurations.")
    if option is not None and option not in DEFAULTS[group] and option not in SENSITIVE.get(group, set()):
        raise invalid(f"Option {option} in group {group} is not supported for domain specific configurations.")


def _validate(config: Mapping[str, Any]) -> None:
    if not config:
        raise errors.BadRequest("The configuration must name at least one group.")
    for group, options in config.items():
        _check(group)
        if not isinstance(options, dict) or not options:
            raise errors.BadRequest(f"The options of group {group} must be a non-empty object.")
        for option in options:
            _check(group, option)


def _rows(s: Session, domain_id: str, group: str | None = None, option: str | None = None) -> list[DomainConfig]:
    q = select(DomainConfig).where(DomainConfig.domain_id == domain_id)
    if group is not None:
        q = q.where(DomainConfig.group == group)
    if option is not None:
        q = q.where(DomainConfig.option == option)
    return list(s.scalars(q.order_by(DomainConfig.group, DomainConfig.option)))


def _render(rows: list[DomainConfig]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not row.sensitive:
            out.setdefault(row.group, {})[row.option] = row.value
    return out


def _write(s: Session, domain_id: str, config: Mapping[str, Any]) -> None:
    for group, options in config.items():
        for option, value in options.items():
            row = s.get(DomainConfig, (domain_id, group, option))
            if row is None:
                s.add(DomainConfig(domain_id=domain_id, group=group, option=option, value=value,
                                   sensitive=option in SENSITIVE.get(group, set())))
            else:
                row.value = value
    s.flush()


def get_config(s: Session, domain_id: str, group: str | None = None, option: str | None = None) -> Any:
    """The domain's configuration, one group of it, or one option's value (404 when it has none)."""
    get_domain(s, domain_id)
    if group is not None:
        _check(group, option)
    shown = _render(_rows(s, domain_id, group, option))
    if not shown:
        what = f"{group}{'.' + option if option else ''}" if group else "config"
        raise errors.NotFound(f"Could not find {what} for domain {domain_id}.")
    if option is not None and group is not None:
        return shown[group][option]
    return shown[group] if group is not None else shown


def create_config(s: Session, domain_id: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Replace the domain's configuration; whether it had none before."""
    get_domain(s, domain_id)
    _validate(config)
    existed = bool(_rows(s, domain_id))
    s.execute(delete(DomainConfig).where(DomainConfig.domain_id == domain_id))
    _write(s, domain_id, config)
    return _render(_rows(s, domain_id)), not existed


def update_config(s: Session, domain_id: str, config: Mapping[str, Any], group: str | None = None,
                  option: str | None = None) -> dict[str, Any]:
    """Merge ``config`` into the domain's configuration (it must exist), limited to ``group``/``option``."""
    get_domain(s, domain_id)
    _validate(config)
    if group is not None and set(config) != {group}:
        raise errors.BadRequest(f"The configuration may only name group {group}.")
    if option is not None and group is not None and set(config[group]) != {option}:
        raise errors.BadRequest(f"The configuration may only name option {option} of group {group}.")
    if not _rows(s, domain_id, group, option):
        raise errors.NotFound(f"Could not find config for domain {domain_id}.")
    _write(s, domain_id, config)
    return _render(_rows(s, domain_id))


def delete_config(s: Session, domain_id: str, group: str | None = None, option: str | None = None) -> None:
    get_domain(s, domain_id)
    if group is not None:
        _check(group, option)
    rows = _rows(s, domain_id, group, option)
    if not rows:
        raise errors.NotFound(f"Could not find config for domain {domain_id}.")
    for row in rows:
        s.delete(row)


def default_config(group: str | None = None, option: str | None = None) -> Any:
    if group is None:
        return DEFAULTS
    _check(group, option)
    if option in SENSITIVE.get(group, set()):
        raise invalid(f"Option {option} in group {group} is sensitive and has no default to show.")
    return DEFAULTS[group] if option is None else DEFAULTS[group][option]
