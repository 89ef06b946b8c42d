"""Ready-made run-dag bodies: the LAO docs' two example flows (and random DAGs, re-exported).

The seed flows carry ``x-sim`` hints that replay the docs' events: the same task ids,
inputs, outputs, errors and gaps between timestamps (at ``time_scale`` 1).
"""

from __future__ import annotations

from otel_bridge.simulator.flow import JSON
from otel_bridge.simulator.generator import generate_flow

__all__ = [
    "CUSTOMER_SUPPORT",
    "FINANCIAL_DATA",
    "SEED_FLOWS",
    "customer_support_flow",
    "financial_data_flow",
    "generate_flow",
]

CUSTOMER_SUPPORT = "Customer_Support_Pipeline"
FINANCIAL_DATA = "Financial_Data_Pipeline"

_CUSTOMER_MESSAGE = (
    "Your new update broke our entire dashboard! Our team can't access reports and we have a"
    " board meeting in 2 hours. This is completely unacceptable!"
)
_SENTIMENT_OUTPUT = {
    "sentiment": "highly_negative",
    "confidence": 0.94,
    "urgency_score": 9.2,
    "key_issues": ["dashboard_broken", "report_access", "time_sensitive"],
    "escalation_recommended": True,
    "customer_tier": "enterprise",
}
_SALESFORCE_OUTPUT = {
    "case_id": "5003000001abCDEF",
    "case_number": "00012345",
    "assigned_to": "senior-support-team",
    "sla_breach_warning": False,
    "estimated_resolution": "2024-02-15T14:30:00Z",
}
_NOTIFICATIONS_OUTPUT = {
    "slack_sent": True,
    "emails_sent": 2,
    "pagerduty_incident": "PD-12345",
    "all_notifications_successful": True,
}


def customer_support_flow(run_name: str = "ticket_78453") -> JSON:
    """Return the docs' Customer_Support_Pipeline: three tasks, the last never reported done."""
    return {
        "flow_name": CUSTOMER_SUPPORT,
        "run_name": run_name,
        "default_inputs": {
            "customer_message": _CUSTOMER_MESSAGE,
            "customer_email": "cto@enterprise-client.com",
        },
        "tasks": [
            {
                "name": "sentiment_analyzer",
                "tag": "agent",
                "function": "call_lyzr_agent",
                "params": {
                    "config": {"agent_id": "sentiment-v2", "api_key": "sk-prod-sentiment-key"},
                    "customer_message": {"input": "customer_message"},
                    "customer_email": {"input": "customer_email"},
                    "priority": {"value": "urgent"},
                },
                "x-sim": {
                    "task_id": "b29aa07f-9341-4ac5-9160-4f7e1f594654",
                    "delay": 2.191,
                    "duration": 5.333,
                    "output": _SENTIMENT_OUTPUT,
                },
            },
            {
                "name": "update_salesforce",
                "tag": "crm",
                "function": "api_call",
                "params": {
                    "config": {
                        "url": "https://enterprise.salesforce.com/services/data/v54.0/sobjects/Case",
                        "method": "POST",
                        "headers": {"Authorization": "Bearer sf_prod_token_xyz"},
                    },
                    "case_data": {
                        "subject": "URGENT: Dashboard access failure - Enterprise Client",
                        "priority": "High",
                        "origin": "API",
                        "status": "New",
                        "account_id": "001234567890ABC",
                        "sentiment_score": 9.2,
                        "auto_escalated": True,
                    },
                },
                "x-sim": {
                    "task_id": "crm-update-567",
                    "delay": 0.445,
                    "duration": 1.777,
                    "output": _SALESFORCE_OUTPUT,
                },
            },
            {
                "name": "send_notifications",
                "tag": "notify",
                "function": "api_call",
                "params": {
                    "config": {
                        "url": "https://api.enterprise-notif.com/v1/alerts",
                        "method": "POST",
                    },
                    "notifications": [
                        {
                            "type": "slack",
                            "channel": "#critical-support",
                            "message": (
                                "\U0001f6a8 URGENT: Enterprise client dashboard failure"
                                " - Case #00012345"
                            ),
                        },
                        {
                            "type": "email",
                            "recipients": [
                                "support-lead@company.com",
                                "engineering-oncall@company.com",
                            ],
                            "subject": (
                                "URGENT: Enterprise Client Issue - Immediate Action Required"
                            ),
                        },
                        {
                            "type": "pagerduty",
                            "service_key": "prod-support-incidents",
                            "severity": "critical",
                        },
                    ],
                },
                "x-sim": {
                    "task_id": "notify-001",
                    "delay": 0.334,
                    "duration": 3.333,
                    "hang": True,
                    "output": _NOTIFICATIONS_OUTPUT,
                },
            },
        ],
        "edges": [
            {"source": "sentiment_analyzer", "target": "update_salesforce"},
            {"source": "update_salesforce", "target": "send_notifications"},
        ],
        "flow_data": {"description": "Enterprise customer support escalation"},
        "x-sim": {
            "task_id": "cust-support-001",
            "message": "Starting customer support workflow",
            "complete_task_id": "pipeline-complete",
            "output": {
                "sentiment_analyzer": {
                    "sentiment": "highly_negative",
                    "urgency_score": 9.2,
                    "escalation_recommended": True,
                },
                "update_salesforce": {
                    "case_id": "5003000001abCDEF",
                    "case_number": "00012345",
                    "assigned_to": "senior-support-team",
                },
                "send_notifications": _NOTIFICATIONS_OUTPUT,
                "summary": {
                    "customer_notified": True,
                    "internal_team_alerted": True,
                    "case_created": True,
                    "escalation_complete": True,
                    "estimated_resolution_time": "2 hours",
                },
            },
        },
    }


def financial_data_flow(run_name: str = "daily_batch_20240215") -> JSON:
    """Return the docs' Financial_Data_Pipeline: validation fails, the flow halts, no task_ids."""
    return {
        "flow_name": FINANCIAL_DATA,
        "run_name": run_name,
        "default_inputs": {
            "source_file": "s3://financial-data/2024/02/15/transactions.csv",
            "record_count": 45000,
        },
        "tasks": [
            {
                "name": "validate_financial_data",
                "tag": "validation",
                "function": "api_call",
                "params": {
                    "source_file": {"input": "source_file"},
                    "record_count": {"input": "record_count"},
                    "validation_rules": [
                        "amount_positive",
                        "valid_account_format",
                        "date_within_range",
                        "currency_code_valid",
                    ],
                },
                "x-sim": {
                    "delay": 1.333,
                    "duration": 44.333,
                    "fail": {
                        "type": "DataValidationError",
                        "message": "1,247 records failed validation checks",
                        "code": "VALIDATION_FAILED",
                        "details": {
                            "total_records": 45000,
                            "failed_records": 1247,
                            "failure_rate": 0.0277,
                            "common_errors": [
                                {"type": "invalid_amount", "count": 834},
                                {"type": "missing_currency", "count": 413},
                            ],
                        },
                        "partial_results": {
                            "valid_records": 43753,
                            "invalid_records_quarantined": True,
                            "quarantine_location": "s3://quarantine/2024/02/15/",
                        },
                    },
                },
            },
            {
                "name": "transform_records",
                "tag": "transform",
                "function": "call_lyzr_agent",
                "params": {
                    "config": {"agent_id": "fin-transformer", "api_key": "sk-prod-fin-transform"},
                    "validated": {"depends": "validate_financial_data"},
                },
            },
            {
                "name": "load_to_warehouse",
                "tag": "load",
                "function": "api_call",
                "params": {
                    "config": {
                        "url": "https://warehouse.internal/api/v2/load",
                        "method": "POST",
                        "headers": {"Authorization": "Bearer wh_prod_token_123"},
                    },
                    "records": {"depends": "transform_records"},
                },
            },
        ],
        "edges": [
            {"source": "validate_financial_data", "target": "transform_records"},
            {"source": "transform_records", "target": "load_to_warehouse"},
        ],
        "flow_data": {"description": "Daily financial batch"},
        "x-sim": {
            "omit_task_ids": True,
            "message": "Processing 45,000 financial records",
            "error": {
                "type": "PipelineHaltedError",
                "message": "Data quality threshold not met, stopping pipeline",
                "code": "QUALITY_THRESHOLD_FAILED",
                "threshold": 0.02,
                "actual_failure_rate": 0.0277,
                "action_taken": "quarantine_and_alert",
            },
            "partial_results": {
                "processed_records": 43753,
                "quarantined_records": 1247,
                "notifications_sent": ["data-quality-team@company.com"],
            },
        },
    }


SEED_FLOWS = (customer_support_flow, financial_data_flow)
