from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo staff and admin accounts (once) and print their credentials."

    def handle(self, *args, **options):
        from portal.accounts.services import demo_accounts_ensure

        created = demo_accounts_ensure()
        if not created:
            self.stdout.write("Demo accounts exist already; passwords left unchanged.")
            return
        self.stdout.write(self.style.WARNING("Demo accounts created. Credentials are shown only this once:"))
        for role, username, password in created:
            self.stdout.write(f"  {role:<13} username: {username:<6} password: {password}")
