"""One way to write dates and times across the console (FORMAT_MODULE_PATH): "Dec 6, 2026 20:30", 24-hour clock.
The admin's read-only fields, lists and the call pages all read these; the call log's rows use the short form."""

DATE_FORMAT = "M j, Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "M j, Y H:i"
SHORT_DATE_FORMAT = "M j, Y"
SHORT_DATETIME_FORMAT = "M j H:i"
MONTH_DAY_FORMAT = "M j"
YEAR_MONTH_FORMAT = "F Y"
