"""Clients of the ERP-side systems: the merchant platform (a source of invoices and a place to
write AppZen's outcomes) and CRM.COM V4 (reject a DRAFT invoice). Each system's answers are read
through one table (``errors``); the write-back that uses them lives in :mod:`pipeline.writeback`.
"""
