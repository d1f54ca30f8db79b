from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from portal.accounts.middleware import session_mark_login

        user_logged_in.connect(session_mark_login, dispatch_uid="portal.accounts.session_mark_login")

        from django.db.models.signals import post_migrate

        from portal.accounts.roles import roles_ensure

        # After every migrate and every flush (the test runner flushes after a test that commits).
        post_migrate.connect(roles_ensure, dispatch_uid="portal.accounts.roles_ensure")


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django admin, with `admin.site` replaced by the portal's 2FA-checking site.

    Every app keeps registering its models with `admin.site` as usual.
    Docs: https://docs.djangoproject.com/en/5.2/ref/contrib/admin/#overriding-the-default-admin-site
    """

    default = False  # chosen by its dotted path in INSTALLED_APPS, never by default
    default_site = "portal.accounts.admin_site.PortalAdminSite"
