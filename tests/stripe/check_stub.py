"""Checks the tests' Stripe stub with Stripe's own Python library: what the library sends is
taken, what it receives is parsed into the objects and errors it raises for Stripe's own
answers. Run by tests/api/stripe_stub_check.rs with the stub's address: python check_stub.py URL
"""

import sys

import stripe

stripe.api_key = 'sk_test_stub_check'
stripe.api_base = sys.argv[1]
stripe.max_network_retries = 0


def refused(error_class, call):
    try:
        call()
    except error_class as e:
        return e
    raise AssertionError(f'{call} was not refused with {error_class.__name__}')


customer = stripe.Customer.create(metadata={'user_id': 'u1'}, idempotency_key='check-1')
again = stripe.Customer.create(metadata={'user_id': 'u1'}, idempotency_key='check-1')
assert again.id == customer.id, 'the same key replays'
assert again.last_response.headers.get('Idempotent-Replayed') == 'true'
e = refused(stripe.IdempotencyError,
            lambda: stripe.Customer.create(metadata={'user_id': 'u2'}, idempotency_key='check-1'))
assert e.http_status == 400

intent = stripe.PaymentIntent.create(
    amount=12050, currency='usd', customer=customer.id, payment_method_types=['card'],
    capture_method='automatic', setup_future_usage='off_session',
    metadata={'booking_id': 'b1'}, idempotency_key='check-2')
assert intent.status == 'requires_payment_method'
assert intent.client_secret.startswith(intent.id + '_secret_')
assert stripe.PaymentIntent.retrieve(intent.id).amount == 12050
e = refused(stripe.InvalidRequestError,
            lambda: stripe.PaymentIntent.create(amount=100, currency='usd', bogus='x'))
assert e.param == 'bogus', e.param
e = refused(stripe.InvalidRequestError,
            lambda: stripe.PaymentIntent.create(amount=100, currency='usd', off_session=True))
assert e.param == 'off_session', e.param
e = refused(stripe.InvalidRequestError, lambda: stripe.PaymentIntent.retrieve('pi_missing'))
assert e.http_status == 404 and e.code == 'resource_missing'

e = refused(stripe.CardError, lambda: stripe.PaymentIntent.create(
    amount=30000, currency='usd', customer=customer.id, payment_method_types=['card'],
    capture_method='manual', payment_method='pm_card_chargeDeclinedInsufficientFunds',
    off_session=True, confirm=True, idempotency_key='check-3'))
assert (e.http_status, e.code, e.error.decline_code) == (402, 'card_declined', 'insufficient_funds')
assert e.user_message == 'Your card has insufficient funds.'
assert e.error.payment_intent.status == 'requires_payment_method'

deposit = stripe.PaymentIntent.create(
    amount=30000, currency='usd', customer=customer.id, payment_method_types=['card'],
    capture_method='manual', payment_method='pm_card_visa', off_session=True, confirm=True,
    metadata={'booking_id': 'b1'}, idempotency_key='check-4')
assert (deposit.status, deposit.amount_capturable) == ('requires_capture', 30000)
taken = stripe.PaymentIntent.capture(deposit.id, amount_to_capture=8000, idempotency_key='check-5')
assert (taken.status, taken.amount_received) == ('succeeded', 8000)
e = refused(stripe.InvalidRequestError, lambda: stripe.PaymentIntent.capture(deposit.id))
assert e.code == 'payment_intent_unexpected_state'
e = refused(stripe.InvalidRequestError, lambda: stripe.PaymentIntent.cancel(deposit.id))
assert e.code == 'payment_intent_unexpected_state'

refund = stripe.Refund.create(payment_intent=deposit.id, amount=3000, idempotency_key='check-6')
assert (refund.status, refund.amount) == ('succeeded', 3000)
e = refused(stripe.InvalidRequestError,
            lambda: stripe.Refund.create(payment_intent=deposit.id, amount=5001))
assert e.param == 'amount'

setup = stripe.SetupIntent.create(customer=customer.id, usage='off_session',
                                  payment_method_types=['card'], idempotency_key='check-7')
assert setup.status == 'requires_payment_method'
assert stripe.SetupIntent.retrieve(setup.id).id == setup.id
stripe.Balance.retrieve()
stripe.api_key = 'pk_test_not_a_secret_key'
refused(stripe.AuthenticationError, lambda: stripe.Balance.retrieve())
print("the stub answers Stripe's Python library as Stripe answers it")
