"""Permissions: every request's access decided by SharingHub or GitLab, from the project owning its resource."""

from django.apps import AppConfig


class PermissionsConfig(AppConfig):
    name = "permissions"
