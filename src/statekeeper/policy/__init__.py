"""The storage & backup strategy as data: the pydantic model and its loader."""
