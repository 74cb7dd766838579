"""The lookup API's parts, built from the settings: the index, the audit writer and the consent
follower on the configured cluster, the consumer registry, Prometheus and the alert receiver for
the status page, and the data catalog. `linkage.api` receives them ready and never reads the settings."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from linkage.api import CONSENTS_CURRENT_TIMEOUT_S, LookupApp, create_app
from linkage.audit import ANCHOR_TOPIC, AUDIT_TOPIC, AuditWriter
from linkage.consent import CONSENT_KEY_OWNER, CONSENT_TOPIC, ConsentFollower, ConsentSignatures, ConsentStore
from linkage.consumers import ConsumerRegistry, load_consumers
from linkage.data_catalog import CatalogPage, describe
from linkage.database import index_engine
from linkage.lookup_service import LookupService
from linkage.migrate import upgrade
from linkage.status_page import PROMETHEUS_BUDGET_S, StatusPage
from linkage.subject_tokens import SubjectTokens
from linkage.subscriptions import load_subscriptions
from monitoring.alert_receiver import fetch_alerts
from monitoring.status import PrometheusClient
from schemas.catalog import load_schema_catalog
from schemas.event_signatures import Signer
from schemas.trust_list_file import TrustListFile
from streams.audit_chains import audit_keys
from streams.security.principals import LOOKUP
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings
from streams.topic_catalog import load_catalog


def consent_signer(settings: Settings) -> Signer:
    """The consent service's current key (made on first use, its public half on the consent trust list)."""
    return SigningKeys(settings.consent_keys_path).signer(CONSENT_KEY_OWNER)


def lookup_parts(settings: Settings, registry: ConsumerRegistry | None = None) -> LookupApp:
    """Everything the API serves from; `registry`: consumers other than the configured file's (tests)."""
    engine = index_engine(settings.index_database_url)
    upgrade(engine)
    consents = ConsentStore(engine)
    kafka = settings.kafka_for(LOOKUP)
    audit = AuditWriter(
        kafka,
        settings.topic(AUDIT_TOPIC),
        settings.audit_partition,
        audit_keys(settings),
        anchor_topic=settings.topic(ANCHOR_TOPIC),
        max_unsealed_s=settings.audit_max_unsealed_s,
    )
    signatures = ConsentSignatures(TrustListFile(settings.consent_trust_list_path))
    follower = ConsentFollower(consents, kafka, settings.topic(CONSENT_TOPIC), signatures)
    service = LookupService(
        engine,
        registry or load_consumers(settings.consumers_file),
        consents,
        audit,
        lambda: follower.current(CONSENTS_CURRENT_TIMEOUT_S),
        SubjectTokens(TrustListFile(settings.subject_token_trust_list_path)),
        processes=settings.lookup_workers,
    )
    prometheus = PrometheusClient(settings.prometheus_query_url, PROMETHEUS_BUDGET_S)
    receiver = settings.alert_receiver_base_url
    topics = load_catalog()
    status = StatusPage(
        engine,
        topics.agencies,
        prometheus.url,
        prometheus.query,
        range_query=prometheus.query_range,
        alerts_url=receiver,
        alerts=partial(fetch_alerts, receiver, PROMETHEUS_BUDGET_S),
    )
    catalog = CatalogPage(
        engine,
        describe(topics.datasets, topics.agencies, load_schema_catalog(), service.registry, load_subscriptions()),
    )
    return LookupApp(service, follower, status, catalog, checkpoint_interval_s=settings.audit_checkpoint_interval_s)


def create_lookup_app(settings: Settings, registry: ConsumerRegistry | None = None) -> FastAPI:
    """The API over the configured index, audit topic and consent topic (under the topic prefix)."""
    return create_app(lookup_parts(settings, registry))
