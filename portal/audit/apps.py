from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: who created, changed, deleted (django-auditlog) and read
    (`PhiAccess`) patient data, with the worker and commands as a named system actor."""

    name = "portal.audit"
    label = "audit"
    verbose_name = "Audit"

    def ready(self):
        from portal.audit import actors, receivers, registry

        registry.register_audited_models()
        actors.connect_signals()
        receivers.connect_signals()
