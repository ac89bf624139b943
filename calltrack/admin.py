from django.contrib import admin

admin.site.site_header = "calltrack"
admin.site.site_title = "calltrack"
admin.site.index_title = "Operator console"
