from calltrack._stdlib_numbers import install_app_package

install_app_package()
