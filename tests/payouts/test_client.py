"""The PayPal client against the fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from parrain.kit.clock import FrozenClock
from parrain.kit.money import Money
from parrain.kit.pii import Pii
from parrain.payouts.errors import (
    DuplicateBatch,
    InvalidPayoutBatch,
    PayPalAuthError,
    PayPalError,
    PayPalNotFound,
    PayPalRateLimited,
    PayPalServerError,
    PayPalTimeout,
    PayPalUnreachable,
    PayPalValidationError,
)
from parrain.payouts.providers.fake import Endpoint, FakePayPal, Fault, OutcomeRule
from parrain.payouts.providers.paypal import PayPalClient, RetryPolicy
from parrain.payouts.providers.paypal_wire import (
    MAX_BATCH_ITEMS,
    BatchStatus,
    ItemStatus,
    PayoutBatchRequest,
    PayoutItemRequest,
)
from tests.payouts.batches import batch, item, numbered_batch
from tests.payouts.conftest import CLIENT_TIMEOUT, RecordedSleeps, impatient_client
from tests.payouts.spec_check import SpecRecorder

SETTLED = timedelta(seconds=6)


# --- token ---------------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_reused_until_shortly_before_it_expires(
    client: PayPalClient, fake: FakePayPal, clock: FrozenClock
) -> None:
    created = client.create_batch(batch("b-token", item("ann@example.com")))
    client.get_batch(created.payout_batch_id)
    client.get_batch(created.payout_batch_id)
    assert fake.requests(Endpoint.TOKEN) == 1

    clock.advance(fake.token_lifetime - timedelta(minutes=6))
    client.get_batch(created.payout_batch_id)
    assert fake.requests(Endpoint.TOKEN) == 1
    clock.advance(timedelta(minutes=2))  # inside the five-minute margin: refreshed before expiry
    client.get_batch(created.payout_batch_id)
    assert fake.requests(Endpoint.TOKEN) == 2


def test_a_401_fetches_a_new_token_once_and_repeats_the_call(
    client: PayPalClient, fake: FakePayPal, sleeps: RecordedSleeps
) -> None:
    created = client.create_batch(batch("b-401", item("ann@example.com")))
    fake.revoke_tokens()
    details = client.get_batch(created.payout_batch_id)
    assert details.header.payout_batch_id == created.payout_batch_id
    assert fake.requests(Endpoint.TOKEN) == 2
    assert sleeps == []


def test_wrong_credentials_are_a_typed_auth_error(fake: FakePayPal) -> None:
    with (
        PayPalClient(
            base_url=fake.base_url, client_id="fake-client-id", client_secret="nope"
        ) as bad,
        pytest.raises(PayPalAuthError) as raised,
    ):
        bad.get_item("FAKEI00000001")
    assert raised.value.code == "paypal_auth_failed"
    assert raised.value.name == "invalid_client"
    assert "nope" not in str(raised.value.to_dict())


# --- create, poll, settle ------------------------------------------------------------------


def test_a_batch_is_created_pending_then_settles_to_each_receivers_outcome(
    client: PayPalClient, fake: FakePayPal
) -> None:
    fake.outcomes = [
        OutcomeRule(r"^unclaimed", ItemStatus.UNCLAIMED),
        OutcomeRule(r"^returned", ItemStatus.RETURNED),
        OutcomeRule(r"^blocked", ItemStatus.BLOCKED),
        OutcomeRule(r"^failed", ItemStatus.FAILED),
    ]
    receivers = [
        f"{kind}@example.com" for kind in ("ok", "unclaimed", "returned", "blocked", "failed")
    ]
    created = client.create_batch(batch("b-settle", *(item(r) for r in receivers)))
    assert created.batch_status is BatchStatus.PENDING
    assert not created.recovered

    pending = client.get_batch(created.payout_batch_id)
    assert pending.header.batch_status is BatchStatus.PROCESSING
    assert pending.count_by_status() == {ItemStatus.PENDING: 5}
    assert not pending.is_settled

    fake.advance(SETTLED)
    settled = client.get_batch(created.payout_batch_id)
    assert settled.header.batch_status is BatchStatus.SUCCESS
    assert settled.header.sender_batch_id == "b-settle"
    assert settled.header.amount == Money(10000, "GBP")
    status_of = {i.receiver.reveal(): i.transaction_status for i in settled.items}
    assert status_of == {
        "ok@example.com": ItemStatus.SUCCESS,
        "unclaimed@example.com": ItemStatus.UNCLAIMED,
        "returned@example.com": ItemStatus.RETURNED,
        "blocked@example.com": ItemStatus.BLOCKED,
        "failed@example.com": ItemStatus.FAILED,
    }
    failed = next(i for i in settled.items if i.transaction_status is ItemStatus.FAILED)
    assert failed.error_name == "RECEIVER_ACCOUNT_INVALID"
    assert failed.amount == Money(2000, "GBP")

    one = client.get_item(failed.payout_item_id)
    assert (one.transaction_status, one.payout_batch_id) == (
        ItemStatus.FAILED,
        created.payout_batch_id,
    )
    assert one.sender_item_id == failed.sender_item_id
    assert fake.paid_total("ok@example.com") == {"GBP": 2000}
    assert fake.paid_total("failed@example.com") == {}


def test_unclaimed_items_come_back_returned_after_thirty_days(
    client: PayPalClient, fake: FakePayPal
) -> None:
    fake.outcomes = [OutcomeRule("^nobody", ItemStatus.UNCLAIMED)]
    created = client.create_batch(batch("b-unclaimed", item("nobody@example.com")))
    fake.advance(SETTLED)
    (unclaimed,) = client.get_batch(created.payout_batch_id).items
    assert unclaimed.transaction_status is ItemStatus.UNCLAIMED
    fake.advance(timedelta(days=30))
    assert client.get_item(unclaimed.payout_item_id).transaction_status is ItemStatus.RETURNED


def test_a_batch_of_15000_items_is_read_back_page_by_page(
    client: PayPalClient, fake: FakePayPal, spec_recorder: SpecRecorder
) -> None:
    created = client.create_batch(numbered_batch("b-15000", MAX_BATCH_ITEMS))
    fake.advance(SETTLED)
    details = client.get_batch(created.payout_batch_id)
    assert len(details.items) == MAX_BATCH_ITEMS
    assert len({i.payout_item_id for i in details.items}) == MAX_BATCH_ITEMS
    assert [i.sender_item_id for i in details.items[:2]] == ["reward-0", "reward-1"]
    assert details.items[-1].amount == Money(100 + MAX_BATCH_ITEMS - 1, "EUR")
    assert details.count_by_status() == {ItemStatus.SUCCESS: MAX_BATCH_ITEMS}
    assert fake.requests(Endpoint.GET_BATCH) == 15  # 1,000 a page
    assert spec_recorder.checked[(Endpoint.GET_BATCH, 200)] == 15


def test_paging_with_small_pages_and_without_totals_reads_every_item(
    client: PayPalClient, fake: FakePayPal
) -> None:
    created = client.create_batch(numbered_batch("b-pages", 25))
    page = client.get_batch_page(created.payout_batch_id, page=3, page_size=10, total_required=True)
    assert (page.total_items, page.total_pages, len(page.items)) == (25, 3, 5)
    no_totals = client.get_batch_page(
        created.payout_batch_id, page=1, page_size=10, total_required=False
    )
    assert (no_totals.total_items, no_totals.total_pages) == (None, None)
    assert len(client.get_batch(created.payout_batch_id, page_size=7).items) == 25
    assert fake.requests(Endpoint.GET_BATCH) == 2 + 4


def test_the_15001st_item_is_refused_before_anything_is_sent(
    client: PayPalClient, fake: FakePayPal
) -> None:
    with pytest.raises(InvalidPayoutBatch) as raised:
        client.create_batch(numbered_batch("b-too-big", MAX_BATCH_ITEMS + 1))
    assert raised.value.details["items"] == MAX_BATCH_ITEMS + 1
    assert fake.requests(Endpoint.CREATE_BATCH) == 0
    assert fake.requests(Endpoint.TOKEN) == 0


def test_local_refusals_empty_batch_zero_amount_and_repeated_item_ids(client: PayPalClient) -> None:
    with pytest.raises(InvalidPayoutBatch):
        client.create_batch(PayoutBatchRequest(sender_batch_id="b-empty", items=[]))
    with pytest.raises(InvalidPayoutBatch):
        client.create_batch(batch("b-zero", item("ann@example.com", 0)))
    with pytest.raises(InvalidPayoutBatch):
        client.create_batch(
            batch(
                "b-twice",
                item("a@example.com", sender_item_id="x"),
                item("b@example.com", sender_item_id="x"),
            )
        )
    with pytest.raises(InvalidPayoutBatch):
        client.create_batch(batch("", item("ann@example.com")))


@pytest.mark.parametrize(
    ("minor", "currency", "value"),
    [(500, "JPY", "500"), (2000, "GBP", "20.00"), (1500, "BHD", "1.500")],
)
def test_zero_two_and_three_decimal_currencies_round_trip_through_paypal(
    client: PayPalClient, minor: int, currency: str, value: str
) -> None:
    created = client.create_batch(batch(f"b-{currency}", item("ann@example.com", minor, currency)))
    (sent,) = client.get_batch(created.payout_batch_id).items
    assert sent.amount == Money(minor, currency)
    assert sent.amount.plain() == value


# --- refusals ------------------------------------------------------------------------------


def test_one_invalid_item_refuses_the_whole_batch_naming_the_field(
    client: PayPalClient, fake: FakePayPal
) -> None:
    bad = PayoutItemRequest(
        receiver=Pii("not-an-email"), amount=Money(100, "GBP"), sender_item_id="bad"
    )
    with pytest.raises(PayPalValidationError) as raised:
        client.create_batch(batch("b-invalid", item("ann@example.com"), bad))
    error = raised.value
    assert (error.http_status, error.name, error.code) == (
        400,
        "VALIDATION_ERROR",
        "paypal_validation_error",
    )
    assert [d["field"] for d in error.error_details] == ["items[1].receiver"]
    assert error.debug_id
    assert "not-an-email" not in str(error.to_dict())
    assert fake.batch_count == 0
    assert fake.payments_to("ann@example.com") == []


def test_a_reused_sender_batch_id_is_a_duplicate_naming_the_original(
    client: PayPalClient, fake: FakePayPal
) -> None:
    first = client.create_batch(batch("b-dup", item("ann@example.com")))
    with pytest.raises(DuplicateBatch) as raised:
        client.create_batch(batch("b-dup", item("ann@example.com")))
    duplicate = raised.value
    assert (duplicate.code, duplicate.name) == ("paypal_duplicate_batch", "USER_BUSINESS_ERROR")
    assert duplicate.sender_batch_id == "b-dup"
    assert duplicate.payout_batch_id == first.payout_batch_id
    assert not duplicate.after_lost_response
    assert fake.batch_count == 1
    assert len(fake.payments_to("ann@example.com")) == 1


def test_recovering_a_duplicate_finds_the_original_batch(
    client: PayPalClient, fake: FakePayPal
) -> None:
    first = client.create_batch(batch("b-recover", item("ann@example.com")))
    again = client.create_or_recover_batch(batch("b-recover", item("ann@example.com")))
    assert again.payout_batch_id == first.payout_batch_id
    assert again.recovered
    assert fake.batch_count == 1


def test_unknown_batch_and_item_are_not_found(client: PayPalClient) -> None:
    with pytest.raises(PayPalNotFound):
        client.get_batch("NOSUCHBATCH")
    with pytest.raises(PayPalNotFound):
        client.get_item("NOSUCHITEM")


# --- retries -------------------------------------------------------------------------------


def test_429_with_retry_after_and_500s_are_retried_then_succeed(
    client: PayPalClient, fake: FakePayPal, sleeps: RecordedSleeps
) -> None:
    fake.inject(Endpoint.CREATE_BATCH, Fault.RATE_LIMIT, retry_after=7)
    fake.inject(Endpoint.CREATE_BATCH, Fault.SERVER_ERROR, times=2)
    created = client.create_batch(batch("b-retry", item("ann@example.com")))
    assert sleeps == [7.0, 1.0, 2.0]  # Retry-After honoured, then 0.5·2^(n-1)
    assert fake.requests(Endpoint.CREATE_BATCH) == 4
    assert fake.batch_count == 1
    assert client.get_batch(created.payout_batch_id).header.sender_batch_id == "b-retry"


def test_500s_past_the_attempt_cap_give_a_typed_error(
    client: PayPalClient, fake: FakePayPal, sleeps: RecordedSleeps
) -> None:
    fake.inject(Endpoint.GET_ITEM, Fault.SERVER_ERROR, times=10)
    with pytest.raises(PayPalServerError) as raised:
        client.get_item("FAKEI00000001")
    assert raised.value.code == "paypal_server_error"
    assert raised.value.details["attempts"] == 4
    assert raised.value.name == "INTERNAL_SERVER_ERROR"
    assert fake.requests(Endpoint.GET_ITEM) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_429s_past_the_cap_and_a_retry_after_too_long_give_up_rate_limited(
    client: PayPalClient, fake: FakePayPal, sleeps: RecordedSleeps
) -> None:
    fake.inject(Endpoint.GET_BATCH, Fault.RATE_LIMIT, times=4, retry_after=2)
    with pytest.raises(PayPalRateLimited) as raised:
        client.get_batch("ANY")
    assert raised.value.details["attempts"] == 4
    assert sleeps == [2.0, 2.0, 2.0]

    sleeps.clear()
    fake.inject(Endpoint.GET_BATCH, Fault.RATE_LIMIT, retry_after=3600)
    with pytest.raises(PayPalRateLimited) as raised:
        client.get_batch("ANY")
    assert raised.value.details["retry_after"] == 3600.0
    assert sleeps == []


def test_a_hung_request_times_out_with_a_typed_error(
    fake: FakePayPal, clock: FrozenClock, sleeps: RecordedSleeps
) -> None:
    fake.inject(Endpoint.GET_ITEM, Fault.HANG, times=2)
    with impatient_client(fake, clock, sleeps) as impatient:
        impatient.access_token()  # the token first, so that only the hung call times out
        with pytest.raises(PayPalTimeout) as raised:
            impatient.get_item("FAKEI00000001")
    assert raised.value.code == "paypal_timeout"
    assert raised.value.details["attempts"] == 2
    assert sleeps == [0.1]


def test_a_timeout_then_an_answer_succeeds(
    fake: FakePayPal, clock: FrozenClock, sleeps: RecordedSleeps
) -> None:
    with impatient_client(fake, clock, sleeps) as impatient:
        created = impatient.create_batch(batch("b-slow", item("ann@example.com")))
        fake.inject(Endpoint.GET_BATCH, Fault.HANG)
        details = impatient.get_batch(created.payout_batch_id)
    assert details.header.payout_batch_id == created.payout_batch_id
    assert sleeps == [0.1]


def test_a_create_that_times_out_is_retried_with_the_same_sender_batch_id(
    fake: FakePayPal, clock: FrozenClock, sleeps: RecordedSleeps
) -> None:
    fake.inject(Endpoint.CREATE_BATCH, Fault.HANG)
    with impatient_client(fake, clock, sleeps) as impatient:
        created = impatient.create_or_recover_batch(batch("b-hang", item("ann@example.com")))
    assert not created.recovered  # the hung attempt was never processed
    assert fake.batch_count == 1
    assert fake.requests(Endpoint.CREATE_BATCH) == 2


def test_a_connection_refused_is_unreachable(sleeps: RecordedSleeps) -> None:
    with (
        PayPalClient(
            base_url="http://127.0.0.1:9",
            client_id="id",
            client_secret="secret",
            sleep=sleeps,
            timeout=CLIENT_TIMEOUT,
            retry=RetryPolicy(max_attempts=2),
        ) as nowhere,
        pytest.raises(PayPalUnreachable),
    ):
        nowhere.get_item("FAKEI00000001")


# --- the lost answer -----------------------------------------------------------------------


def test_a_create_whose_answer_is_lost_is_retried_and_the_batch_is_found_paid_once(
    client: PayPalClient, fake: FakePayPal
) -> None:
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE)
    request = batch("b-lost", item("ann@example.com", 2500), item("bo@example.com", 1500))
    created = client.create_or_recover_batch(request)
    assert created.recovered
    assert fake.batch_count == 1
    assert fake.requests(Endpoint.CREATE_BATCH) == 2
    fake.advance(SETTLED)
    details = client.get_batch(created.payout_batch_id)
    assert details.header.sender_batch_id == "b-lost"
    assert details.count_by_status() == {ItemStatus.SUCCESS: 2}
    assert len(fake.payments_to("ann@example.com")) == 1
    assert fake.paid_total("ann@example.com") == {"GBP": 2500}


def test_a_plain_create_after_a_lost_answer_says_duplicate_after_lost_response(
    client: PayPalClient, fake: FakePayPal
) -> None:
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE)
    with pytest.raises(DuplicateBatch) as raised:
        client.create_batch(batch("b-lost-plain", item("ann@example.com")))
    assert raised.value.after_lost_response
    assert raised.value.payout_batch_id is not None
    assert client.get_batch(raised.value.payout_batch_id).header.sender_batch_id == "b-lost-plain"
    assert fake.batch_count == 1


def test_a_create_never_answered_then_a_crash_recovers_without_a_second_batch(
    client: PayPalClient, fake: FakePayPal
) -> None:
    request = batch("b-crash", item("ann@example.com"))
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE, times=4)
    with pytest.raises(PayPalUnreachable):
        client.create_batch(request)  # accepted by PayPal, never answered: the process "dies"
    assert fake.batch_count == 1
    recovered = client.create_or_recover_batch(request)  # the next run, same sender_batch_id
    assert recovered.recovered
    assert fake.batch_count == 1
    assert len(fake.payments_to("ann@example.com")) == 1


def test_every_answer_of_the_fake_was_checked_against_the_spec(
    client: PayPalClient, fake: FakePayPal, spec_recorder: SpecRecorder
) -> None:
    created = client.create_batch(batch("b-spec", item("ann@example.com")))
    client.get_batch(created.payout_batch_id)
    fake.inject(Endpoint.GET_ITEM, Fault.RATE_LIMIT, retry_after=0)
    with pytest.raises(PayPalNotFound):
        client.get_item("NOSUCHITEM")
    assert spec_recorder.checked == {
        (Endpoint.TOKEN, 200): 1,
        (Endpoint.CREATE_BATCH, 201): 1,
        (Endpoint.GET_BATCH, 200): 1,
        (Endpoint.GET_ITEM, 429): 1,
        (Endpoint.GET_ITEM, 404): 1,
    }


def test_receivers_never_reach_the_log(
    client: PayPalClient, fake: FakePayPal, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.inject(Endpoint.CREATE_BATCH, Fault.SERVER_ERROR)
    created = client.create_or_recover_batch(batch("b-log", item("secret.person@example.com")))
    client.get_batch(created.payout_batch_id)
    out = capsys.readouterr()
    assert "secret.person" not in out.out + out.err


def test_a_transport_is_injectable(fake: FakePayPal) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/oauth2/token":
            return httpx.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 60}
            )
        return httpx.Response(
            404, json={"name": "RESOURCE_NOT_FOUND", "message": "no", "debug_id": "d"}
        )

    with (
        PayPalClient(
            base_url="http://paypal.test",
            client_id="i",
            client_secret="s",
            transport=httpx.MockTransport(handler),
        ) as mocked,
        pytest.raises(PayPalNotFound),
    ):
        mocked.get_item("X")
    assert seen == ["/v1/oauth2/token", "/v1/payments/payouts-item/X"]


def test_a_failed_token_fetch_is_a_typed_paypal_error_to_callers() -> None:
    """``access_token`` is public: a token endpoint that fails raises the client's typed
    error, never the client's internal retry signal."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, json={"name": "SERVICE_UNAVAILABLE", "message": "later", "debug_id": "d"}
        )

    with (
        PayPalClient(
            base_url="http://paypal.test",
            client_id="i",
            client_secret="s",
            transport=httpx.MockTransport(handler),
        ) as mocked,
        pytest.raises(PayPalServerError) as raised,
    ):
        mocked.access_token()
    assert isinstance(raised.value, PayPalError)
    assert raised.value.http_status == 503
