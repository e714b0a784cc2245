"""The bridge between the CRM and the BPMN engine.

``automation`` implements the engine's ports over ``crm_models``: start data for an entity
(``snapshot``), CRM service operations for service tasks (``operations``), who gets a user task
(``assignment``), and the dispatcher that turns outbox events into process instances
(``dispatcher``). It imports ``crm_models`` and ``engine`` but never ``flask``: the web side
(``web/``) wires it into the app, the benchmark uses it without any app at all.
"""
