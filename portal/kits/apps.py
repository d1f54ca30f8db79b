from django.apps import AppConfig


class KitsConfig(AppConfig):
    name = "portal.kits"
    label = "kits"
