"""Marshrut's BPMN runtime on SpiffWorkflow: deploy, start, run, persist, tasks, timers, jobs.

Boundary: this package imports neither ``flask`` nor ``crm_models`` (a test enforces it).
What it needs from the CRM — who a task goes to, what a service task does — arrives through
the ports in ``engine.ports``, implemented by the ``automation`` package and passed to the
``Engine`` constructor. Every method that touches the database takes the caller's SQLAlchemy
``Session`` so that process state and the CRM writes of service tasks commit together.
"""
