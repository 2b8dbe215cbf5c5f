"""Batch jobs beyond single requests: submitting, collecting results. No Airflow in here."""
