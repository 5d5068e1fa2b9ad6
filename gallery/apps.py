from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"

    def ready(self) -> None:
        from gallery import signin

        signin.connect()
