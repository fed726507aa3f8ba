"""The demo of `make run` shows the release pages in their typical states."""

from __future__ import annotations

import datetime as dt
import io

from django.core.management import call_command
from django.urls import reverse

from batches.models import BatchState, Order, OrderStatus
from batches.services.materials import site_today
from carmfg.accounts.models import Site
from qc.dashboard import collection_day
from qc.models import Alert, Certification, TestResult
from qc.selectors import release_queue_for_user


def test_the_demo_shows_each_release_state_with_its_orders_status_and_collection_day(db, django_user_model, client):
    call_command("seed_demo", stdout=io.StringIO())

    site = Site.objects.get(code="msk")
    qp = django_user_model.objects.get(username="qp")
    rows = {row.batch.order.patient.initials: row for row in release_queue_for_user(qp, site=site)}
    assert rows["LN"].stage == "provisional"
    assert rows["LN"].exceptions == 0
    assert rows["LN"].outstanding == 0
    assert rows["RG"].failing == 1
    assert rows["EK"].stage == "final"
    assert rows["EK"].late_failure
    assert rows["EK"].batch.state == BatchState.ON_HOLD
    assert Alert.objects.filter(recipient=qp, acknowledged_at__isnull=True).exists()
    # Infused a week after apheresis: the dashboards show a plausible vein-to-vein time.
    assert collection_day(rows["EK"].batch) == site_today(site) - dt.timedelta(days=7)
    # The day the collection was recorded at intake counts, not the label's registration day.
    assert collection_day(rows["LN"].batch) == site_today(site) - dt.timedelta(days=9)
    # The orders follow their batches as on the floor: certified → product released,
    # one fraction of three given → partly infused.
    assert rows["LN"].batch.order.status == OrderStatus.IN_MANUFACTURING
    assert rows["EK"].batch.order.status == OrderStatus.PARTLY_INFUSED
    certified = Order.objects.filter(batch__state__in=[BatchState.PROVISIONALLY_RELEASED, BatchState.RELEASED])
    assert certified.count() == 2
    assert set(certified.values_list("status", flat=True)) == {OrderStatus.RELEASED}
    # The older stories show their own collection day, registered within a week of it.
    today = site_today(site)
    days_ago = {"LN": 9, "RG": 11, "EK": 7, "TB": 12, "MV": 30}
    orders = {o.patient.initials: o for o in Order.objects.filter(site=site, patient__initials__in=days_ago)
              .select_related("patient", "donation", "batch__donation__intake")}
    assert set(orders) == set(days_ago)
    for initials, ago in days_ago.items():
        order, donation = orders[initials], orders[initials].donation
        day = today - dt.timedelta(days=ago)
        # The order list's Collection column, the labels' day and the day counted vein to vein agree.
        assert (order.planned_collection_date, donation.collection_date, collection_day(order.batch)) == (day,) * 3
        # Registered on the day of apheresis: the one-week rule holds for the demo as for everyone.
        registered_on = donation.created_at.astimezone(site.zone).date()
        assert abs((day - registered_on).days) <= 7, initials
    client.force_login(django_user_model.objects.get(username="coord"))
    page = client.get(reverse("batches:order_list")).content.decode()
    assert (today - dt.timedelta(days=30)).isoformat() in page
    assert "Partly infused" in page
    assert "Product released" in page
    counts = (TestResult.objects.count(), Certification.objects.count())

    call_command("seed_demo", stdout=io.StringIO())

    assert (TestResult.objects.count(), Certification.objects.count()) == counts

