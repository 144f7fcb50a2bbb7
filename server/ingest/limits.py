"""How large a request's table may be: rows and columns, checked before it is decoded.

A body's size says little of its table's: a 175 KB zstd Parquet file can hold 20 million
rows, and a JSON matrix takes about 25 times its text in memory. So the rows and columns are
counted where that costs nothing (a Parquet file's metadata, the JSON once parsed and before
numpy copies it, a CSV as it is read block by block) and a table past a limit is a 413
naming it, before its matrix exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import TooLarge


@dataclass(frozen=True)
class TableLimits:
    rows: int
    columns: int
    rows_setting: str  # MAX_PREDICT_ROWS or MAX_FIT_ROWS, for the message
    # A file's table once decoded (Parquet's uncompressed size): at most this many bytes.
    decoded_bytes: int

    def check_rows(self, rows: int, exact: bool = True) -> None:
        if rows > self.rows:
            count = f"{rows}" if exact else f"more than {self.rows}"
            raise TooLarge(
                f"the table has {count} rows; this endpoint takes at most {self.rows} "
                f"({self.rows_setting}): send it in parts"
            )

    def check_columns(self, columns: int) -> None:
        if columns > self.columns:
            raise TooLarge(
                f"the table has {columns} columns; the server takes at most {self.columns} "
                "(MAX_COLUMNS)"
            )

    def check_decoded(self, decoded: int) -> None:
        if decoded > self.decoded_bytes:
            raise TooLarge(
                f"the file's table is more than {self.decoded_bytes / 2**20:g} MiB once "
                "decompressed, the most a request may be (MAX_BODY_MB)"
            )


# For code that reads tables outside a request (tests, tools): no limit but the machine's.
UNLIMITED = TableLimits(2**62, 2**62, "no limit", 2**62)


@dataclass(frozen=True)
class RequestLimits:
    """The limits of each kind of request, from the settings."""

    predict: TableLimits  # /predict, /evaluate
    fit: TableLimits  # /fit, /automl
    explain: TableLimits  # /explain

    @classmethod
    def of(
        cls, predict_rows: int, fit_rows: int, explain_rows: int, columns: int, body_bytes: int
    ) -> RequestLimits:
        return cls(
            TableLimits(predict_rows, columns, "MAX_PREDICT_ROWS", body_bytes),
            TableLimits(fit_rows, columns, "MAX_FIT_ROWS", body_bytes),
            TableLimits(explain_rows, columns, "MAX_EXPLAIN_ROWS", body_bytes),
        )
