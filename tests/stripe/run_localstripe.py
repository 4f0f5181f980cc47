"""localstripe, as the test suite runs it: a stateful fake of Stripe's API.

Two things of Stripe's API reference that the payment flow uses are missing from
localstripe 1.15.10, and are added here before it starts:

- PaymentIntent creation takes `setup_future_usage` (localstripe refuses the parameter);
- a PaymentIntent has `amount_received`, what was captured of it (a partial capture
  captures less than `amount`);
- a PaymentIntent whose payment failed takes another payment method and is confirmed
  again (localstripe keeps the failed charge and refuses the second confirmation).

And one fault of its own is mended: it sends each event to the registered webhooks by
iterating over them across an await, so a test registering its endpoint meanwhile made it
raise ("dictionary changed size during iteration") and drop the event; it iterates over a
snapshot here.

Everything else is localstripe's own. It listens on 127.0.0.1 only (localstripe's own start
binds an IPv6 socket, which not every CI machine has) and starts from an empty store.

Run: python run_localstripe.py --port 8420
"""

import argparse

from aiohttp import web
from localstripe import resources, server, webhooks

_init = resources.PaymentIntent.__init__


def _intent_init(self, setup_future_usage=None, **kwargs):
    if setup_future_usage not in (None, 'on_session', 'off_session'):
        raise resources.UserError(400, 'Bad request')
    _init(self, **kwargs)
    self.setup_future_usage = setup_future_usage


def _amount_received(self):
    charge = self.latest_charge
    if charge is None or charge.status != 'succeeded' or not charge.captured:
        return 0
    return getattr(charge, '_captured_amount', charge.amount)


_capture = resources.Charge._capture


def _charge_capture(self, amount, on_success=None):
    # Set before capturing: the success event is written during the capture.
    before = getattr(self, '_captured_amount', None)
    self._captured_amount = (self.amount if amount is None
                             else resources.try_convert_to_int(amount))
    try:
        return _capture(self, amount, on_success)
    except Exception:
        self._captured_amount = before
        raise


_update = resources.PaymentIntent._update


def _intent_update(self, **data):
    _update(self, **data)
    failed = self.latest_charge is not None and self.latest_charge.status == 'failed'
    if 'payment_method' in data and failed:
        self.latest_charge = None


class _Webhooks(dict):
    def values(self):
        return list(super().values())


webhooks._webhooks = _Webhooks(webhooks._webhooks)
resources.PaymentIntent.__init__ = _intent_init
resources.PaymentIntent._update = _intent_update
resources.PaymentIntent.amount_received = property(_amount_received)
resources.Charge._capture = _charge_capture

if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, default=8420)
    args = parser.parse_args()
    web.run_app(server.app, host='127.0.0.1', port=args.port, access_log=None)
