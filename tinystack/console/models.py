"""The console token table: only a token's hash is kept, with what it opens and until when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from tinystack.core.db import Base


class ConsoleToken(Base):
    __tablename__ = "console_token"
    # sha256 of the token: a database dump gives no usable console URL.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    console_type: Mapped[str] = mapped_column(String(32))
    # Whole epoch seconds (no float: MySQL's FLOAT is single precision), compared in SQL with the caller's clock.
    expires: Mapped[int] = mapped_column(BigInteger, index=True)
    # Set once, by the compare-and-swap that consumes the token; a second use finds it set.
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


TABLES = [ConsoleToken.__table__]
