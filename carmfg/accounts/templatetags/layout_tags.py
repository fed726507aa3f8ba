"""Pieces of the page layout that every app's templates share."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_block_tag
def scroll_region(content: str, label: str) -> SafeString:
    """A table that may scroll sideways, in a region keyboard users can reach and scroll
    (WCAG 2.1.1; axe ``scrollable-region-focusable``) and screen readers can name::

        {% scroll_region _("Batches") %}<table>...</table>{% endscroll_region %}
    """
    return format_html('<div class="table-scroll" tabindex="0" role="region" aria-label="{}">{}</div>', label, content)


@register.filter
def page_numbers(page) -> list:
    """The page numbers a pager shows around ``page``: the first, the last and two on
    each side of the current one; gaps are ``Paginator.ELLIPSIS``."""
    return list(page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1))


@register.simple_tag(takes_context=True)
def page_query(context, name: str, number: int) -> str:
    """``{% querystring %}`` with the page parameter's name in a variable: the pager of
    one of several lists on a page changes only its own parameter, keeps the others."""
    params = context.request.GET.copy()
    params[name] = str(number)
    return f"?{params.urlencode()}"
