"""The CRM service functions: the only way anything writes CRM rows."""
from .activities import add_activity, add_comment, complete_activity, list_activities, list_comments
from .conversion import Conversion, conversion_preview, convert_lead
from .crm import (
                         assign_responsible,
                         change_deal_stage,
                         create_company,
                         create_contact,
                         create_deal,
                         create_lead,
                         delete_company,
                         delete_contact,
                         delete_deal,
                         delete_lead,
                         get_company,
                         get_contact,
                         get_deal,
                         get_lead,
                         get_record,
                         list_companies,
                         list_contacts,
                         list_deals,
                         list_leads,
                         update_company,
                         update_contact,
                         update_deal,
                         update_lead,
)
from .records import Page

__all__ = [
    "Conversion", "Page", "add_activity", "add_comment", "assign_responsible",
    "change_deal_stage", "complete_activity", "conversion_preview", "convert_lead",
    "create_company", "create_contact", "create_deal", "create_lead", "delete_company",
    "delete_contact", "delete_deal", "delete_lead", "get_company", "get_contact", "get_deal",
    "get_lead", "get_record", "list_activities", "list_comments", "list_companies",
    "list_contacts", "list_deals", "list_leads", "update_company", "update_contact",
    "update_deal", "update_lead",
]
