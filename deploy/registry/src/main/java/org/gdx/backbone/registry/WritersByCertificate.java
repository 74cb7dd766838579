package org.gdx.backbone.registry;

import io.quarkus.vertx.http.runtime.filters.Filters;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.RoutingContext;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.event.Observes;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * Who may change the registry, decided by the client certificate as the broker decides by its ACLs.
 *
 * <p>The TLS layer already refuses a connection without a certificate of the project's CA. Of those
 * that pass, every one may read; the principals named in {@code gdx.registry.writers} (the
 * certificate's CN, as the broker names {@code User:<CN>}) may change anything (register, set a
 * subject's compatibility, delete), those in {@code gdx.registry.registrars} may only register a
 * schema under a subject, which the registry accepts only when the subject's compatibility rule
 * allows it. Anyone else gets a 403 in the Confluent API's error form, as does every request of a
 * principal in {@code gdx.registry.revoked} (the TLS layer checks no revocation list).
 *
 * <p>Why a route filter and not Quarkus security: Quarkus 2.16 maps no role from a certificate,
 * Apicurio replaces Quarkus's authentication mechanisms with its own (which, with its OIDC login
 * off, names nobody, and fails when asked for a challenge), and Quarkus's path patterns cannot tell
 * a subject's registration ({@code POST /subjects/s/versions}) from its look-up ({@code POST
 * /subjects/s}).
 */
@ApplicationScoped
public class WritersByCertificate {
    private static final Set<HttpMethod> READS = Set.of(HttpMethod.GET, HttpMethod.HEAD, HttpMethod.OPTIONS);

    /** The Confluent API's POSTs that only read: a schema looked up under a subject, a compatibility check. */
    private static final Pattern READING_POST =
            Pattern.compile("/apis/ccompat/v7/(subjects/[^/]+/?|compatibility/.*)");

    /** A schema registered as a subject's next version. */
    private static final Pattern REGISTRATION = Pattern.compile("/apis/ccompat/v7/subjects/[^/]+/versions/?");

    private static final int FIRST = 100_000;

    @ConfigProperty(name = "gdx.registry.writers")
    Set<String> writers;

    @ConfigProperty(name = "gdx.registry.registrars")
    Optional<Set<String>> registrars;

    @ConfigProperty(name = "gdx.registry.revoked")
    Optional<Set<String>> revoked;

    void register(@Observes Filters filters) {
        filters.register(this::check, FIRST);
    }

    private void check(RoutingContext request) {
        HttpMethod method = request.request().method();
        boolean post = HttpMethod.POST.equals(method);
        String path = request.normalizedPath();
        boolean reads = READS.contains(method) || (post && READING_POST.matcher(path).matches());
        String who = commonName(request.request().sslSession());
        boolean registers = post && REGISTRATION.matcher(path).matches()
                && registrars.map(names -> names.contains(who)).orElse(false);
        String named = who.replaceAll("[^A-Za-z0-9._-]", "?");
        if (revoked.map(names -> names.contains(who)).orElse(false)) {
            refuse(request, "principal " + named + " is revoked");
        } else if (reads || registers || writers.contains(who)) {
            request.next();
        } else {
            refuse(request, "principal " + named + " may read this registry but not change it");
        }
    }

    private static void refuse(RoutingContext request, String why) {
        request.response()
                .setStatusCode(403)
                .putHeader("Content-Type", "application/vnd.schemaregistry.v1+json")
                .end("{\"error_code\":40301,\"message\":\"" + why + "\"}");
    }

    private static String commonName(SSLSession session) {
        if (session == null) {
            return "";
        }
        try {
            Certificate[] chain = session.getPeerCertificates();
            if (chain.length == 0 || !(chain[0] instanceof X509Certificate)) {
                return "";
            }
            String subject = ((X509Certificate) chain[0]).getSubjectX500Principal().getName();
            for (Rdn rdn : new LdapName(subject).getRdns()) {
                if ("CN".equalsIgnoreCase(rdn.getType())) {
                    return rdn.getValue().toString();
                }
            }
        } catch (SSLPeerUnverifiedException | InvalidNameException refused) {
            return "";
        }
        return "";
    }
}
