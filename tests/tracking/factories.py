from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from tracking.models import Call, CallAttempt, Campaign, CampaignHandler, Contact, ConversionRule, Handler, Source, Webhook

__all__ = [
    "UserFactory", "SourceFactory", "HandlerFactory", "CampaignFactory", "CampaignHandlerFactory",
    "CallFactory", "CallAttemptFactory", "ContactFactory", "ConversionRuleFactory", "WebhookFactory",
]


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-for-tests-only")


class SourceFactory(DjangoModelFactory):
    class Meta:
        model = Source

    name = factory.Sequence(lambda n: f"Source {n}")


class HandlerFactory(DjangoModelFactory):
    class Meta:
        model = Handler

    name = factory.Sequence(lambda n: f"Handler {n}")
    receiving_number = factory.SubFactory("tests.numbers.factories.ReceivingNumberFactory")
    timezone = "America/New_York"
    always_open = True


class CampaignFactory(DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")


class CampaignHandlerFactory(DjangoModelFactory):
    class Meta:
        model = CampaignHandler

    campaign = factory.SubFactory(CampaignFactory)
    handler = factory.SubFactory(HandlerFactory)


class CallFactory(DjangoModelFactory):
    class Meta:
        model = Call

    call_sid = factory.Sequence(lambda n: f"CA{n:032x}")
    caller_number = "+14155550100"
    called_number = "+18005550100"
    campaign = factory.SubFactory(CampaignFactory)


class CallAttemptFactory(DjangoModelFactory):
    class Meta:
        model = CallAttempt

    call = factory.SubFactory(CallFactory)
    handler = factory.SubFactory(HandlerFactory)
    number_dialed = factory.LazyAttribute(lambda o: o.handler.receiving_number.number if o.handler else "+13035550100")


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    phone_number = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")


class ConversionRuleFactory(DjangoModelFactory):
    class Meta:
        model = ConversionRule

    campaign = factory.SubFactory(CampaignFactory)


class WebhookFactory(DjangoModelFactory):
    class Meta:
        model = Webhook

    campaign = factory.SubFactory(CampaignFactory)
    url = "http://127.0.0.1:9/hook"
    events = ["call.completed"]
