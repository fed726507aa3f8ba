"""Pages of the chain of identity: patients, orders, the DIN and its labels, custody
scans, apheresis intake, infusion, and the vein-to-vein timeline.

Thin: parse the form, call one service or selector, render. Objects are read through
the site-scoped selectors (another site's object is a 404); each service checks the
user's role again. A refused scan renders the page under a full-screen red alert.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_http_methods, require_POST

from batches import coi_forms as f
from batches.exceptions import IdentityMismatch
from batches.models import (
    BatchState,
    ContainerType,
    CustodyStep,
    IntakeOutcome,
    LabelStatus,
    OrderStatus,
)
from batches.selectors import (
    batch_for_donation,
    batch_get_for_user,
    custody_event_list_for_donation,
    donation_get_for_user,
    infusion_list_for_batch,
    intake_for_donation,
    intake_get_for_user,
    label_get_for_user,
    label_list_for_donation,
    last_custody_location,
    order_get_for_user,
    order_list_for_patient,
    order_list_for_user,
    patient_get_for_user,
    patient_list_for_user,
    product_list_for_site,
)
from batches.services.custody import STEP_RULES, can_scan, custody_scan
from batches.services.infusion import INFUSABLE_STATES, infusion_record
from batches.services.intake import (
    CRITERIA_FIELDS,
    intake_accept_with_deviation,
    intake_criteria_for,
    intake_criteria_set,
    intake_record,
    intake_reject,
)
from batches.services.labels import (
    can_handle_labels,
    fractions_of,
    label_apply,
    label_destroy,
    label_reconciliation,
    labels_print,
)
from batches.services.patients import (
    PATIENT_FIELDS,
    donation_register,
    order_cancel,
    order_create,
    order_update,
    patient_create,
    patient_update,
)
from batches.timeline import coi_timeline
from batches.views.submission import form_error, form_submit
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import GMPError, PermissionRefused

LIST_PAGE_SIZE = 50


def _site(request):
    site = request.site if request.site else None
    if site is None:
        raise Http404("You hold no role at any site.")
    return site


def _local_now(site):
    return timezone.now().astimezone(site.zone).replace(tzinfo=None, second=0, microsecond=0)


def _is_coordinator(user, site) -> bool:
    return has_site_perm(user, site, SitePerm.PATIENTS)


# -- patients ------------------------------------------------------------------------


@login_required
def patient_list(request):
    site = _site(request)
    show_hrn = _is_coordinator(request.user, site)
    query = (request.GET.get("q") or "")[:64].replace("\x00", "").strip()
    patients = patient_list_for_user(request.user, site=site).annotate(order_count=Count("orders"))
    if query:
        match = Q(pseudonym__icontains=query) | Q(initials__iexact=query)
        if show_hrn:
            match |= Q(hospital_record_number__iexact=query)
        patients = patients.filter(match)
    page = Paginator(patients.order_by("-created_at", "-pk"), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "batches/coi/patient_list.html", {
        "page": page, "query": query, "show_hrn": show_hrn, "can_register": show_hrn,
    })


@login_required
@require_http_methods(["GET", "POST"])
def patient_create_view(request):
    site = _site(request)
    require_site_perm(request.user, site, SitePerm.PATIENTS, action=gettext_noop("register patients"))
    form = f.PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = patient_create(actor=request.user, site=site, **form.cleaned_data)
        except GMPError as exc:
            form_error(form, exc)
        else:
            messages.success(request, gettext("Patient %(patient)s registered.") % {"patient": patient.pseudonym})
            return redirect("batches:patient_detail", pk=patient.pk)
    return render(request, "batches/coi/patient_form.html", {"form": form, "patient": None})


@login_required
def patient_detail(request, pk: int):
    patient = patient_get_for_user(request.user, pk)
    return render(request, "batches/coi/patient_detail.html", {
        "patient": patient, "orders": order_list_for_patient(patient),
        "show_hrn": _is_coordinator(request.user, patient.site),
        "can_edit": _is_coordinator(request.user, patient.site),
    })


@login_required
@require_http_methods(["GET", "POST"])
def patient_edit(request, pk: int):
    patient = patient_get_for_user(request.user, pk)
    require_site_perm(request.user, patient.site, SitePerm.PATIENTS, action=gettext_noop("change patients"))
    initial = {name: getattr(patient, name) for name in PATIENT_FIELDS} | {"version": patient.version}
    form = f.PatientEditForm(request.POST or None, initial=initial)
    done = form_submit(request, form, lambda data: patient_update(
        actor=request.user, patient=patient, reason=data.pop("reason"), expected_version=data.pop("version"), **data),
        success=lambda changed: gettext("Patient %(patient)s changed.") % {"patient": changed.pseudonym},
        next_url=lambda changed: reverse("batches:patient_detail", args=[changed.pk]))
    return done.response or render(request, "batches/coi/patient_form.html", {"form": form, "patient": patient})


# -- orders --------------------------------------------------------------------------


@login_required
def order_list(request):
    site = _site(request)
    orders = order_list_for_user(request.user, site=site).select_related("donation", "batch").order_by("-created_at", "-pk")
    page = Paginator(orders, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "batches/coi/order_list.html", {"page": page, "can_register": _is_coordinator(request.user, site)})


@login_required
@require_http_methods(["GET", "POST"])
def order_create_view(request, pk: int):
    patient = patient_get_for_user(request.user, pk)
    require_site_perm(request.user, patient.site, SitePerm.PATIENTS, action=gettext_noop("register orders"))
    products = product_list_for_site(patient.site)
    form = f.OrderForm(request.POST or None, products=products)
    if request.method == "POST" and form.is_valid():
        try:
            order = order_create(actor=request.user, patient=patient, **form.cleaned_data)
        except GMPError as exc:
            form_error(form, exc)
        else:
            messages.success(request, gettext("Order %(number)s registered.") % {"number": order.number})
            return redirect("batches:order_detail", pk=order.pk)
    return render(request, "batches/coi/order_form.html", {"form": form, "patient": patient, "order": None,
                                                           "no_products": not products.exists()})


@login_required
@require_http_methods(["GET", "POST"])
def order_edit(request, pk: int):
    order = order_get_for_user(request.user, pk)
    require_site_perm(request.user, order.site, SitePerm.PATIENTS, action=gettext_noop("change orders"))
    fields = ("product", "indication", "treating_physician", "physician_email", "target_dose_cells_per_kg",
              "planned_collection_date", "planned_infusion_date")
    initial = {name: getattr(order, name) for name in fields} | {"version": order.version}
    form = f.OrderEditForm(request.POST or None, initial=initial, products=product_list_for_site(order.site))
    done = form_submit(request, form, lambda data: order_update(
        actor=request.user, order=order, reason=data.pop("reason"), expected_version=data.pop("version"), **data),
        success=lambda changed: gettext("Order %(number)s changed.") % {"number": changed.number},
        next_url=lambda changed: reverse("batches:order_detail", args=[changed.pk]))
    return done.response or render(request, "batches/coi/order_form.html",
                                    {"form": form, "patient": order.patient, "order": order})


def _next_step(order, donation, labels, intake, batch) -> str:
    """What the people on this order do next, in one sentence."""
    if order.status in (OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.INFUSED):
        return ""
    if donation is None:
        return gettext("Register the collection on the day of apheresis: it issues the DIN.")
    bags = [lb for lb in labels if lb.container_type == ContainerType.APHERESIS_BAG and lb.status != LabelStatus.DESTROYED]
    if not bags:
        return gettext("Print the apheresis bag label.")
    if all(lb.status == LabelStatus.PRINTED for lb in bags):
        return gettext("Stick the label on the apheresis bag, then record it as applied.")
    if intake is None:
        return gettext("Scan the bag at collection and transport; at the GMP facility, record the apheresis intake.")
    if intake.outcome == IntakeOutcome.PENDING:
        return gettext("The intake is outside its criteria: a QP decides (accept with deviation, or reject).")
    if batch is not None and batch.state in INFUSABLE_STATES:
        return gettext("Released: infuse at the bedside after scanning the bag and the wristband.")
    if batch is not None:
        return gettext("In manufacturing: batch %(number)s (%(state)s).") % {
            "number": batch.number, "state": gettext(batch.get_state_display()).lower()}
    return ""


@login_required
def order_detail(request, pk: int):
    order = order_get_for_user(request.user, pk)
    site = order.site
    donation = getattr(order, "donation", None)
    can_register = _is_coordinator(request.user, site)
    context = {
        "can_edit_order": can_register and order.status in (
            OrderStatus.REGISTERED, OrderStatus.COLLECTED, OrderStatus.IN_MANUFACTURING, OrderStatus.RELEASED,
            OrderStatus.PARTLY_INFUSED),
        "order": order, "patient": order.patient, "donation": donation,
        "show_hrn": can_register,
        "can_register": can_register,
        "can_labels": can_handle_labels(request.user, site),
        "can_scan": can_scan(request.user, site),
        "can_intake": has_site_perm(request.user, site, SitePerm.EXECUTE),
        "collection_form": f.CollectionForm(initial={"collection_date": order.planned_collection_date}),
        "fractions": fractions_of(order.product),
    }
    batch = batch_for_donation(donation) if donation is not None else None
    if donation is not None:
        context.update({
            "labels": list(label_list_for_donation(donation)),
            "reconciliation": label_reconciliation(donation),
            "intake": intake_for_donation(donation),
            "batch": batch,
            "print_form": f.LabelPrintForm(),
        })
    # Until a batch has started (order_cancel refuses after).
    context["can_cancel_order"] = bool(context["can_edit_order"]) and (batch is None or batch.state == BatchState.PLANNED)
    context["next_step"] = _next_step(order, donation, context.get("labels", []), context.get("intake"),
                                      context.get("batch"))
    return render(request, "batches/coi/order_detail.html", context)


@login_required
@require_POST
def order_cancel_view(request, pk: int):
    order = order_get_for_user(request.user, pk)
    try:
        order_cancel(actor=request.user, order=order, reason=request.POST.get("reason", "")[:4000],
                     expected_version=_version(request.POST.get("version")))
    except GMPError as exc:
        messages.error(request, gettext("The order was not cancelled.") + " " + exc.text)
    else:
        messages.success(request, gettext("Order %(number)s cancelled.") % {"number": order.number})
    return redirect("batches:order_detail", pk=order.pk)


def _version(raw) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return -1  # refused as stale: the form was not the current one


# -- apheresis acceptance criteria (per site and product) -------------------------------------------


def _criteria_rows(site, error_product) -> list[dict]:
    rows = []
    for product in product_list_for_site(site):
        criteria = intake_criteria_for(site, product)
        rows.append({"product": product, "criteria": criteria, "is_default": criteria.pk is None,
                     "signatures": signatures_for_record(criteria) if criteria.pk else [],
                     "mine": product.pk == error_product})
    return rows


def _render_criteria(request, *, posted=None, error_product=None, error_field=None, status=200):
    site = _site(request)
    return render(request, "batches/coi/intake_criteria.html", {
        "rows": _criteria_rows(site, error_product), "can_edit": has_site_perm(request.user, site, SitePerm.ADMIN),
        "posted": posted or {}, "error_field": error_field,
    }, status=status)


@login_required
def intake_criteria_list(request):
    return _render_criteria(request)


@login_required
@require_POST
def intake_criteria_edit(request, pk: int):
    site = _site(request)
    product = product_list_for_site(site).filter(pk=pk).first()
    if product is None:
        raise Http404("Not found.")
    try:
        intake_criteria_set(actor=request.user, product=product, reason=request.POST.get("reason", "")[:4000],
                            password=request.POST.get("password", "")[:4096], request=request,
                            **{name: request.POST.get(name, "")[:64] for name in CRITERIA_FIELDS})
    except GMPError as exc:
        messages.error(request, gettext("%(product)s: nothing was changed.") % {"product": product.name} + " " + exc.text)
        return _render_criteria(request, posted=request.POST, error_product=product.pk, error_field=exc.field,
                                status=exc.status_code)
    messages.success(request, gettext("Intake acceptance criteria of %(product)s changed and signed.")
                     % {"product": product.name})
    return redirect(reverse("batches:intake_criteria") + f"#product-{product.pk}")


@login_required
@require_POST
def collection_register(request, pk: int):
    order = order_get_for_user(request.user, pk)
    form = f.CollectionForm(request.POST)
    if not form.is_valid():
        errors = " ".join(str(e) for e in form.errors.get("collection_date", [gettext("invalid.")]))
        messages.error(request, gettext("Day of apheresis: %(errors)s") % {"errors": errors})
        return redirect("batches:order_detail", pk=order.pk)
    try:
        donation = donation_register(actor=request.user, order=order, collection_date=form.cleaned_data["collection_date"])
    except GMPError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, gettext("Collection registered: DIN %(din)s. Print the apheresis bag label next.")
                         % {"din": donation.din_display})
    return redirect("batches:order_detail", pk=order.pk)


# -- labels --------------------------------------------------------------------------


@login_required
@require_POST
def labels_print_view(request, pk: int):
    donation = donation_get_for_user(request.user, pk)
    back = redirect("batches:order_detail", pk=donation.order_id)
    form = f.LabelPrintForm(request.POST)
    with timezone.override(donation.site.zone):
        valid = form.is_valid()
    if not valid:
        errors = "; ".join(
            (f"{form.fields[name].label or name}: " if name in form.fields else "") + " ".join(str(e) for e in errs)
            for name, errs in form.errors.items())
        messages.error(request, gettext("Nothing was printed.") + " " + errors)
        return back
    data = form.cleaned_data
    try:
        labels, pdf = labels_print(actor=request.user, donation=donation, container_type=data["container_type"],
                                   quantity=data["quantity"], expires_at=data["expires_at"])
    except GMPError as exc:
        messages.error(request, gettext("Nothing was printed.") + " " + exc.text)
        return back
    codes = "_".join(label.container_code for label in labels)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="labels-{donation.din}-{codes}.pdf"'
    return response


@login_required
@require_POST
def label_apply_view(request, pk: int):
    label = label_get_for_user(request.user, pk)
    try:
        label_apply(actor=request.user, label=label)
    except GMPError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, gettext("Label %(code)s recorded as applied.") % {"code": label.container_code})
    return redirect(reverse("batches:order_detail", args=[label.donation.order_id]) + "#labels")


@login_required
@require_http_methods(["GET", "POST"])
def label_destroy_view(request, pk: int):
    label = label_get_for_user(request.user, pk)
    if not can_handle_labels(request.user, label.site):
        raise PermissionRefused(gettext_noop("Your roles at %(site)s do not allow you to destroy labels."),
                                params={"site": label.site})
    form = f.LabelDestroyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            label_destroy(actor=request.user, label=label, reason=form.cleaned_data["reason"])
        except GMPError as exc:
            form_error(form, exc)
        else:
            messages.success(request, gettext("Label %(code)s recorded as destroyed.") % {"code": label.container_code})
            return redirect(reverse("batches:order_detail", args=[label.donation.order_id]) + "#labels")
    return render(request, "batches/coi/label_destroy.html", {"form": form, "label": label})


# -- custody ---------------------------------------------------------------------------


@login_required
def custody_steps(request, pk: int):
    donation = donation_get_for_user(request.user, pk)
    steps = [(step, STEP_RULES[step]) for step in CustodyStep]
    return render(request, "batches/coi/custody_steps.html", {
        "donation": donation, "order": donation.order, "steps": steps,
        "events": custody_event_list_for_donation(donation).order_by("-performed_at", "-pk"),
        "can_scan": can_scan(request.user, donation.site),
    })


@login_required
@require_http_methods(["GET", "POST"])
def custody_scan_view(request, pk: int, step: str):
    donation = donation_get_for_user(request.user, pk)
    if step not in STEP_RULES:
        raise Http404("No such custody step.")
    rule = STEP_RULES[CustodyStep(step)]
    if not can_scan(request.user, donation.site):
        raise PermissionRefused(gettext_noop("Your roles at %(site)s do not allow you to record custody scans."),
                                params={"site": donation.site})
    initial = {"location": last_custody_location(request.user, donation.site, step)}
    form = f.CustodyScanForm(request.POST or None, initial=initial, asks_temperature=rule.asks_temperature)
    blocked = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            event = custody_scan(actor=request.user, donation=donation, step=step, scanned_code=data["scanned_code"],
                                 location=data["location"], temperature_c=data.get("temperature_c"))
        except IdentityMismatch as exc:
            blocked, status = exc, 409
        except GMPError as exc:
            form_error(form, exc)
        else:
            code = event.label.container_code if event.label is not None else ""
            messages.success(request, gettext("%(step)s: %(code)s of %(din)s matched and recorded.") % {
                "step": gettext(event.get_step_display()), "code": code, "din": donation.din_display})
            return redirect("batches:custody_scan", pk=donation.pk, step=step)
    return render(request, "batches/coi/custody_scan.html", {
        "donation": donation, "order": donation.order, "step": CustodyStep(step), "rule": rule, "form": form,
        "blocked": blocked, "retry_url": reverse("batches:custody_scan", args=[donation.pk, step]),
        "blocked_context": gettext("Custody scan · %(step)s · patient %(patient)s") % {
            "step": gettext(CustodyStep(step).label), "patient": donation.order.patient.pseudonym},
        "events": custody_event_list_for_donation(donation).filter(step=step).order_by("-performed_at", "-pk")[:10],
    }, status=status)


# -- intake ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def intake_record_view(request, pk: int):
    donation = donation_get_for_user(request.user, pk)
    existing = intake_for_donation(donation)
    if existing is not None:
        return redirect("batches:intake_detail", pk=existing.pk)
    require_site_perm(request.user, donation.site, SitePerm.EXECUTE, action=gettext_noop("record apheresis intake"))
    site = donation.site
    form = f.IntakeForm(request.POST or None, initial={"received_at": _local_now(site)})
    blocked = None
    status = 200
    if request.method == "POST":
        with timezone.override(site.zone):
            valid = form.is_valid()
        if valid:
            try:
                intake = intake_record(actor=request.user, donation=donation, **form.cleaned_data)
            except IdentityMismatch as exc:
                blocked, status = exc, 409
            except GMPError as exc:
                form_error(form, exc)
            else:
                if intake.outcome == IntakeOutcome.ACCEPTED:
                    messages.success(request, gettext("Within all acceptance criteria: accepted, and the batch is created."))
                else:
                    messages.warning(request, gettext("Outside the acceptance criteria: a QP must accept it with a "
                                                      "deviation or reject it."))
                return redirect("batches:intake_detail", pk=intake.pk)
    return render(request, "batches/coi/intake_form.html", {
        "donation": donation, "order": donation.order, "form": form, "blocked": blocked,
        "criteria": intake_criteria_for(site, donation.order.product),
        "retry_url": reverse("batches:intake_record", args=[donation.pk]),
        "blocked_context": gettext("Apheresis intake · patient %(patient)s") % {
            "patient": donation.order.patient.pseudonym},
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def intake_detail(request, pk: int):
    intake = intake_get_for_user(request.user, pk)
    donation = intake.donation
    can_decide = (intake.outcome == IntakeOutcome.PENDING and has_site_perm(request.user, intake.site, SitePerm.CERTIFY))
    form = f.IntakeDecisionForm(request.POST or None, initial={"version": intake.version})
    if request.method == "POST":
        require_site_perm(request.user, intake.site, SitePerm.CERTIFY, action=gettext_noop("decide on apheresis intake"))
        if form.is_valid():
            data = form.cleaned_data
            common = {"actor": request.user, "intake": intake, "password": data["password"], "reason": data["reason"],
                      "expected_version": data["version"], "request": request}
            try:
                if data["decision"] == "reject":
                    intake_reject(**common)
                else:
                    intake_accept_with_deviation(classification=data["classification"], **common)
            except GMPError as exc:
                form_error(form, exc)
            else:
                intake.refresh_from_db()
                messages.success(request, gettext("Decision signed: %(outcome)s.") % {
                    "outcome": gettext(intake.get_outcome_display()).lower()})
                return redirect("batches:intake_detail", pk=intake.pk)
    return render(request, "batches/coi/intake_detail.html", {
        "intake": intake, "donation": donation, "order": donation.order, "form": form, "can_decide": can_decide,
        "batch": batch_for_donation(donation), "signatures": signatures_for_record(intake),
    })


# -- infusion --------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def infusion_view(request, batch_pk: int):
    batch = batch_get_for_user(request.user, batch_pk)
    site = batch.site
    percents = fractions_of(batch.product)
    given = {inf.fraction_number: inf for inf in infusion_list_for_batch(batch)}
    due = next((n for n in range(1, len(percents) + 1) if n not in given), None)
    choices = [(n, gettext("Fraction %(number)s of %(count)s – %(percent)s %% of the dose")
                % {"number": n, "count": len(percents), "percent": p}) for n, p in enumerate(percents, start=1)]
    can_record = _is_coordinator(request.user, site)
    form = f.InfusionForm(request.POST or None, fractions=choices,
                          initial={"fraction_number": due, "infused_at": _local_now(site)})
    blocked = None
    status = 200
    if request.method == "POST":
        require_site_perm(request.user, site, SitePerm.PATIENTS, action=gettext_noop("record infusions"))
        with timezone.override(site.zone):
            valid = form.is_valid()
        if valid:
            try:
                infusion = infusion_record(actor=request.user, batch=batch, request=request, **form.cleaned_data)
            except IdentityMismatch as exc:
                blocked, status = exc, 409
            except GMPError as exc:
                form_error(form, exc)
            else:
                messages.success(request, gettext("Fraction %(number)s recorded and signed: bag and wristband matched.")
                                 % {"number": infusion.fraction_number})
                return redirect("batches:infusion_record", batch_pk=batch.pk)
    return render(request, "batches/coi/infusion.html", {
        "batch": batch, "order": batch.order, "donation": batch.donation, "patient": batch.order.patient,
        "form": form, "blocked": blocked, "can_record": can_record,
        "released": batch.state in INFUSABLE_STATES, "state_label": BatchState(batch.state).label,
        # One row per fraction of the product (a handful): its infusion and signatures.
        "fractions": [(n, p, given.get(n), signatures_for_record(given[n]) if n in given else [])
                      for n, p in enumerate(percents, start=1)], "due": due,
        "retry_url": reverse("batches:infusion_record", args=[batch.pk]),
        "blocked_context": gettext("Infusion at the bedside · patient %(patient)s") % {
            "patient": batch.order.patient.pseudonym},
    }, status=status)


# -- the chain of identity, vein to vein -------------------------------------------------


@login_required
def coi_timeline_view(request, pk: int):
    donation = donation_get_for_user(request.user, pk)
    entries = coi_timeline(donation)
    return render(request, "batches/coi/timeline.html", {
        "donation": donation, "order": donation.order, "patient": donation.order.patient,
        "batch": batch_for_donation(donation), "entries": entries,
        "blocked_count": sum(1 for e in entries if e.result == "blocked"),
    })


@login_required
def coi_for_batch(request, pk: int):
    batch = batch_get_for_user(request.user, pk)
    return redirect("batches:coi_timeline", pk=batch.donation_id)


urlpatterns = [
    path("patients/", patient_list, name="patient_list"),
    path("patients/new/", patient_create_view, name="patient_create"),
    path("patients/<int:pk>/", patient_detail, name="patient_detail"),
    path("patients/<int:pk>/edit/", patient_edit, name="patient_edit"),
    path("patients/<int:pk>/orders/new/", order_create_view, name="order_create"),
    path("orders/", order_list, name="order_list"),
    path("orders/<int:pk>/", order_detail, name="order_detail"),
    path("orders/<int:pk>/edit/", order_edit, name="order_edit"),
    path("orders/<int:pk>/collection/", collection_register, name="collection_register"),
    path("orders/<int:pk>/cancel/", order_cancel_view, name="order_cancel"),
    path("intake-criteria/", intake_criteria_list, name="intake_criteria"),
    path("intake-criteria/<int:pk>/", intake_criteria_edit, name="intake_criteria_edit"),
    path("donations/<int:pk>/labels/print/", labels_print_view, name="labels_print"),
    path("labels/<int:pk>/apply/", label_apply_view, name="label_apply"),
    path("labels/<int:pk>/destroy/", label_destroy_view, name="label_destroy"),
    path("donations/<int:pk>/custody/", custody_steps, name="custody_steps"),
    path("donations/<int:pk>/custody/<slug:step>/", custody_scan_view, name="custody_scan"),
    path("donations/<int:pk>/intake/", intake_record_view, name="intake_record"),
    path("intakes/<int:pk>/", intake_detail, name="intake_detail"),
    path("infusions/<int:batch_pk>/", infusion_view, name="infusion_record"),
    path("donations/<int:pk>/coi/", coi_timeline_view, name="coi_timeline"),
    path("coi/batch/<int:pk>/", coi_for_batch, name="coi_batch"),
]
