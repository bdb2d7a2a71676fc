"""factory_boy factories. Users mirror what the assertion middleware would create."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from apps.access.models import AccessLevel, AccessRequest, Grant, Resource
from apps.access.states import GrantState, RequestState
from apps.accounts.models import User
from apps.accounts.roles import claim_group


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"idp|user{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    email_key = factory.LazyAttribute(lambda o: o.email.casefold() if o.email else None)
    display_name = factory.Faker("name")

    @factory.post_generation
    def groups(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            # Claim groups, mirrored under their prefix as the middleware does.
            self.groups.set([claim_group(n) for n in extracted])


class ResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resource
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"res-{n}")
    name = factory.Sequence(lambda n: f"Resource {n}")
    approver_groups = factory.LazyFunction(lambda: ["approvers"])
    duration_choices = factory.LazyFunction(lambda: [60, 120, 240])
    max_duration_minutes = 480


class AccessLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessLevel

    resource = factory.SubFactory(ResourceFactory)
    slug = factory.Sequence(lambda n: f"level-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").capitalize())
    rank = factory.Sequence(lambda n: n)
    criteria = factory.LazyFunction(list)


class AccessRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessRequest

    requester = factory.SubFactory(UserFactory)
    filed_by = factory.SelfAttribute("requester")
    resource = factory.SubFactory(ResourceFactory)
    duration_minutes = 60
    justification = "Investigating incident INC-1234 in production"
    state = RequestState.PENDING
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + timedelta(hours=24))


class GrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Grant

    request = factory.SubFactory(AccessRequestFactory, state=RequestState.APPROVED)
    user = factory.SelfAttribute("request.requester")
    email = factory.LazyAttribute(lambda o: o.user.email)
    resource = factory.SelfAttribute("request.resource")
    not_before = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.not_before + timedelta(hours=1))
    state = GrantState.ACTIVE
    created_at = factory.LazyFunction(timezone.now)
