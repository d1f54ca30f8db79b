from django.apps import AppConfig


class UpstreamConfig(AppConfig):
    name = "portal.upstream"
    label = "upstream"
    verbose_name = "Lab partner API"
