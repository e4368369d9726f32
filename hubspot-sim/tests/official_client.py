"""Drives the simulator with HubSpot's official Python client (hubspot-api-client).

Run by the Rust test `official_client` against a freshly started simulator:

    python official_client.py --base-url http://127.0.0.1:PORT

Each check asserts what HubSpot itself would return. Exits non-zero on the first failure.
"""

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import hubspot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

checks = []


def check(name):
    def wrap(fn):
        checks.append((name, fn))
        return fn

    return wrap


def expect_error(call, status, category=None, policy=None):
    try:
        call()
    except ApiException as e:
        assert e.status == status, f"expected HTTP {status}, got {e.status}: {e.body}"
        body = json.loads(e.body)
        assert body["status"] == "error", body
        assert body.get("correlationId"), body
        if category:
            assert body["category"] == category, body
        if policy:
            assert body["policyName"] == policy, body
            assert body["errorType"] == "RATE_LIMIT", body
        return body, dict(e.headers or {})
    raise AssertionError(f"expected HTTP {status}, but the call succeeded")


def client(base, token):
    return hubspot.Client.create(access_token=token, host=base)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--oauth-client", required=True, help="CLIENT_ID:CLIENT_SECRET the simulator knows")
    parser.add_argument("--portal", required=True, type=int, help="a portal to install into")
    args = parser.parse_args()
    client_id, client_secret = args.oauth_client.split(":", 1)
    redirect = "https://app.example/callback"
    base = args.base_url
    api = client(base, "pat-na1-main")
    run = uuid.uuid4().hex[:8]
    email = f"ada.{run}@example.com"
    state = {}

    @check("create returns 201 with string properties")
    def _():
        c = api.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": email.upper(), "firstname": "Ada"})
        )
        assert c.id.isdigit(), c.id
        assert c.properties["email"] == email, c.properties
        assert c.properties["hs_object_id"] == c.id
        assert c.created_at is not None and c.archived is False
        state["id"] = c.id

    @check("duplicate email is 409 CONFLICT naming the existing id")
    def _():
        body, _ = expect_error(
            lambda: api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email})),
            409,
            "CONFLICT",
        )
        assert body["message"] == f"Contact already exists. Existing ID: {state['id']}", body

    @check("get by email with idProperty=email")
    def _():
        c = api.crm.contacts.basic_api.get_by_id(email, id_property="email", properties=["firstname", "phone"])
        assert c.id == state["id"]
        assert c.properties["firstname"] == "Ada" and c.properties["phone"] is None, c.properties

    @check("unknown id is 404 OBJECT_NOT_FOUND")
    def _():
        body, _ = expect_error(lambda: api.crm.contacts.basic_api.get_by_id("1"), 404, "OBJECT_NOT_FOUND")
        assert body["context"] == {"id": ["1"]}, body

    @check("update (PATCH) changes properties")
    def _():
        c = api.crm.contacts.basic_api.update(state["id"], SimplePublicObjectInput(properties={"lastname": "Lovelace"}))
        assert c.properties["lastname"] == "Lovelace", c.properties

    @check("invalid email is 400 VALIDATION_ERROR")
    def _():
        body, _ = expect_error(
            lambda: api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "not-an-email"})),
            400,
            "VALIDATION_ERROR",
        )
        assert "INVALID_EMAIL" in body["message"], body

    @check("search by email finds the contact with total and default properties")
    def _():
        r = api.crm.contacts.search_api.do_search(
            PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
                limit=10,
            )
        )
        assert r.total == 1 and r.results[0].id == state["id"], r
        assert r.results[0].properties["lastname"] == "Lovelace"

    @check("batch upsert by email reports new flags")
    def _():
        other = f"grace.{run}@example.com"
        r = api.crm.contacts.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(id=email, id_property="email", properties={"phone": "+44 20 7946 0000"}),
                    SimplePublicObjectBatchInputUpsert(id=other, id_property="email", properties={"firstname": "Grace"}),
                ]
            )
        )
        assert r.status == "COMPLETE", r
        by_email = {x.properties["email"]: x for x in r.results}
        assert by_email[email].new is False and by_email[email].id == state["id"], r
        assert by_email[other].new is True, r

    @check("archive, then the contact is gone")
    def _():
        api.crm.contacts.basic_api.archive(state["id"])
        expect_error(lambda: api.crm.contacts.basic_api.get_by_id(state["id"]), 404, "OBJECT_NOT_FOUND")

    @check("ten-secondly limit: 429 with HubSpot's body and headers")
    def _():
        burner = client(base, f"pat-na1-burn-{run}")
        for _ in range(100):
            burner.crm.contacts.basic_api.get_page(limit=1)
        body, headers = expect_error(lambda: burner.crm.contacts.basic_api.get_page(limit=1), 429, policy="TEN_SECONDLY_ROLLING")
        assert body["message"] == "You have reached your ten_secondly_rolling limit.", body
        lower = {k.lower(): v for k, v in headers.items()}
        assert lower["x-hubspot-ratelimit-max"] == "100", headers
        assert lower["x-hubspot-ratelimit-remaining"] == "0", headers
        assert lower["x-hubspot-ratelimit-interval-milliseconds"] == "10000", headers

    @check("search limit: 429 'secondly' without rate-limit headers")
    def _():
        searcher = client(base, f"pat-na1-search-{run}")
        req = PublicObjectSearchRequest(limit=1)
        for _ in range(5):
            searcher.crm.contacts.search_api.do_search(req)
        body, headers = expect_error(lambda: searcher.crm.contacts.search_api.do_search(req), 429, policy="SECONDLY")
        assert body["message"] == "You have reached your secondly limit.", body
        assert not any(k.lower().startswith("x-hubspot-ratelimit") for k in headers), headers

    @check("properties: every deal property with its type, and one by name")
    def _():
        props = api.crm.properties.core_api.get_all(object_type="deals")
        by_name = {p.name: p for p in props.results}
        assert by_name["amount"].type == "number", by_name["amount"]
        assert by_name["closedate"].type == "datetime", by_name["closedate"]
        assert by_name["hs_lastmodifieddate"].modification_metadata.read_only_value is True
        email = api.crm.properties.core_api.get_by_name(object_type="contacts", property_name="email")
        assert email.has_unique_value is True and email.type == "string", email
        # The properties module raises its own exception classes.
        from hubspot.crm.properties import ApiException as PropertiesApiException
        try:
            api.crm.properties.core_api.get_by_name(object_type="contacts", property_name="no_such")
            raise AssertionError("an unknown property was found")
        except PropertiesApiException as e:
            assert e.status == 404 and json.loads(e.body)["category"] == "OBJECT_NOT_FOUND", e

    @check("companies and deals: create with properties, read back by id")
    def _():
        from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput
        from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealInput

        company = api.crm.companies.basic_api.create(CompanyInput(properties={"name": f"Acme {run}", "domain": "acme.test"}))
        deal = api.crm.deals.basic_api.create(DealInput(properties={"dealname": f"Renewal {run}", "amount": "1200", "dealstage": "closedwon"}))
        assert company.id.isdigit() and deal.id.isdigit(), (company.id, deal.id)
        got = api.crm.deals.basic_api.get_by_id(deal.id, properties=["dealname", "amount"])
        assert got.properties["amount"] == "1200" and got.properties["dealname"] == f"Renewal {run}", got.properties
        state["company"], state["deal"] = company.id, deal.id

    @check("associations v4: a labelled and a default edge, read back from both sides")
    def _():
        from hubspot.crm.associations.v4 import (
            AssociationSpec,
            BatchInputPublicAssociationMultiPost,
            BatchInputPublicDefaultAssociationMultiPost,
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicAssociationMultiPost,
            PublicDefaultAssociationMultiPost,
            PublicFetchAssociationsBatchRequest,
            PublicObjectId,
        )

        deal, company = state["deal"], state["company"]
        v4 = api.crm.associations.v4.batch_api
        made = v4.create(
            "deals",
            "companies",
            BatchInputPublicAssociationMultiPost(
                inputs=[
                    PublicAssociationMultiPost(
                        _from=PublicObjectId(id=deal),
                        to=PublicObjectId(id=company),
                        types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=5)],
                    )
                ]
            ),
        )
        assert made.results[0].labels == ["Primary"], made
        contact = api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": f"deal.{run}@example.com"}))
        v4.create_default(
            "deals",
            "contacts",
            BatchInputPublicDefaultAssociationMultiPost(
                inputs=[PublicDefaultAssociationMultiPost(_from=PublicObjectId(id=deal), to=PublicObjectId(id=contact.id))]
            ),
        )
        read = v4.get_page(
            "companies", "deals", BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=company)])
        )
        to = read.results[0].to[0]
        assert str(to.to_object_id) == deal, to
        assert [(t.type_id, t.label) for t in to.association_types] == [(6, "Primary")], to
        read = v4.get_page(
            "deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=deal)])
        )
        assert [str(t.to_object_id) for t in read.results[0].to] == [contact.id], read

    @check("custom events: occurrences sent one and in a batch, once per uuid, read back")
    def _():
        from hubspot.events.send import BehavioralEventHttpCompletionRequest, BatchedBehavioralEventHttpCompletionRequest
        # Event definitions have no API class in this client: created over HTTP.
        req = urllib.request.Request(
            f"{base}/events/v3/event-definitions", method="POST",
            data=json.dumps({"label": "Nova", "name": f"nova_{run}", "primaryObject": "CONTACT",
                             "propertyDefinitions": [{"name": "amount", "label": "Amount", "type": "number"}]}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer pat-na1-main"})
        full = json.loads(urllib.request.urlopen(req).read())["fullyQualifiedName"]
        contact = api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": f"ev.{run}@example.com"}))
        one = BehavioralEventHttpCompletionRequest(event_name=full, object_id=contact.id, uuid=f"u1-{run}", properties={"amount": "5"})
        api.events.send.basic_api.send(one)
        api.events.send.batch_api.send(BatchedBehavioralEventHttpCompletionRequest(inputs=[
            one, BehavioralEventHttpCompletionRequest(event_name=full, email=f"ev.{run}@example.com", uuid=f"u2-{run}", properties={"amount": "7"}),
        ]))
        page = api.events.events_api.get_page(object_type="contact", object_id=int(contact.id), event_type=full)
        assert sorted(e.properties["amount"] for e in page.results) == ["5", "7"], page
        from hubspot.events.send import ApiException as SendException
        try:
            api.events.send.basic_api.send(
                BehavioralEventHttpCompletionRequest(event_name=full, object_id=contact.id, properties={"colour": "red"}))
        except SendException as e:
            assert e.status == 400 and json.loads(e.body)["category"] == "VALIDATION_ERROR", e.body
            return
        raise AssertionError("an undefined event property was accepted")

    @check("bad token is 401")
    def _():
        expect_error(lambda: client(base, "").crm.contacts.basic_api.get_page(limit=1), 401, "INVALID_AUTHENTICATION")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def authorization_code():
        query = urllib.parse.urlencode(
            {"client_id": client_id, "redirect_uri": redirect, "scope": "oauth crm.objects.contacts.read",
             "state": run, "portal": args.portal}
        )
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(f"{base}/oauth/authorize?{query}")
        except urllib.error.HTTPError as e:
            assert e.code == 302, e.code
            back = urllib.parse.parse_qs(urllib.parse.urlparse(e.headers["Location"]).query)
            assert back["state"] == [run], back
            return back["code"][0]
        raise AssertionError("the install did not redirect")

    oauth = hubspot.Client.create(host=base).oauth

    @check("OAuth: the tokens API exchanges an install's code")
    def _():
        t = oauth.tokens_api.create(
            grant_type="authorization_code", code=authorization_code(), redirect_uri=redirect,
            client_id=client_id, client_secret=client_secret,
        )
        assert t.token_type == "bearer" and t.expires_in == 1800, t
        state["access"], state["refresh"] = t.access_token, t.refresh_token

    @check("OAuth: token info names the portal and scopes")
    def _():
        info = oauth.access_tokens_api.get(state["access"])
        assert info.hub_id == args.portal, info
        assert info.scopes == ["oauth", "crm.objects.contacts.read"], info
        assert 0 < info.expires_in <= 1800, info

    @check("OAuth: the tokens API refreshes, and the new token calls the CRM")
    def _():
        t = oauth.tokens_api.create(
            grant_type="refresh_token", refresh_token=state["refresh"],
            client_id=client_id, client_secret=client_secret,
        )
        assert t.access_token != state["access"] and t.refresh_token == state["refresh"], t
        details = client(base, t.access_token).crm.contacts.basic_api.get_page(limit=1)
        assert details.results is not None

    @check("OAuth: an unknown refresh token is invalid_grant")
    def _():
        from hubspot.oauth import ApiException as OAuthException
        try:
            oauth.tokens_api.create(
                grant_type="refresh_token", refresh_token="refresh-nope",
                client_id=client_id, client_secret=client_secret,
            )
        except OAuthException as e:
            assert e.status == 400, e.status
            assert json.loads(e.body)["error"] == "invalid_grant", e.body
            return
        raise AssertionError("an unknown refresh token was accepted")

    passed = failed = 0
    for name, fn in checks:
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every kind of failure the same way
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            break
    print(f"official client: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
