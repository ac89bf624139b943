from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from calltrack.admin_base import ModelAdmin

admin.site.site_header = "calltrack"
admin.site.site_title = "calltrack"
admin.site.index_title = "Operator console"

# Users and groups in the admin theme too (django.contrib.auth registers them with Django's own classes).
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


# The framework's other tables (API tokens, background tasks, login lockouts) in the theme and behind the gate too: their own admin classes, on
# calltrack's ModelAdmin (these apps come before calltrack in INSTALLED_APPS, so they are registered by now).
for _model, _admin in list(admin.site._registry.items()):
    if _model._meta.app_label in ("authtoken", "django_q", "axes") and not isinstance(_admin, ModelAdmin):
        admin.site.unregister(_model)
        admin.site.register(_model, type(type(_admin).__name__, (type(_admin), ModelAdmin), {}))
