<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Exception\PermissionDeniedException;
use Emitgate\Exception\UnavailableException;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\Pki;
use Emitgate\Tests\Support\SecuredStack;

/**
 * Mutual TLS served by the gateway (SecuredStack::mtls()): a client
 * certificate is required, and its subject `CN=billing` authenticates as the
 * key `billing` (Emit and Broadcast in `/` only), without an API key. The
 * client presents its certificate with the `certFile` / `keyFile` options.
 */
final class MutualTlsTest extends EndToEndTestCase
{
    protected static function gatewayArgs(): array
    {
        return SecuredStack::mtls();
    }

    protected function client(): Client
    {
        $pki = Pki::get();
        return new Client(
            'https://' . $this->stack->grpc,
            caFile: $pki->ca,
            certFile: $pki->clientCert,
            keyFile: $pki->clientKey,
        );
    }

    public function testTheClientCertificateAuthenticatesAsItsKey(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        for ($i = 1; $i <= 3; $i++) {
            $this->assertSame(2, $this->io->to('r1')->emit("mtls-$i", $i)->receivers);
        }

        $this->assertSame([3], $this->argsOf($a['id'], 'mtls-3'));
        $this->assertSame(['mtls-1', 'mtls-2', 'mtls-3'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame(1, $this->io->getTransport()->connectionCount());
    }

    public function testTheScopeOfTheCertificatesKeyApplies(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $admin = $this->stack->connect('/admin', 1, ['r1']);

        try {
            $this->io->to('r1')->socketsJoin('r2');
            $this->fail('expected PERMISSION_DENIED');
        } catch (PermissionDeniedException $e) {
            $this->assertFalse($e->isLocal());
            $this->assertStringContainsString('"billing" may not call SocketsJoin', $e->getStatusMessage());
        }
        try {
            $this->io->of('/admin')->broadcast('x');
            $this->fail('expected PERMISSION_DENIED');
        } catch (PermissionDeniedException $e) {
            $this->assertStringContainsString('namespace "/admin"', $e->getStatusMessage());
        }

        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
        $this->assertEqualsCanonicalizing([$a['sid'], 'r1'], $this->stack->rooms($a['id']));
        $this->assertSame([], $this->stack->events($admin['id']));
    }

    public function testACallWithoutAClientCertificateIsRefused(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = new Client('https://' . $this->stack->grpc, caFile: Pki::get()->ca);
        try {
            $io->to('r1')->emit('no-certificate');
            $this->fail('expected the handshake to fail');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertTrue($e->isRetryable());
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAClientCertificateTheGatewayDoesNotTrustIsRefused(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $pki = Pki::get();
        // Same subject as the trusted certificate, but self-signed.
        $impostor = new Client(
            'https://' . $this->stack->grpc,
            caFile: $pki->ca,
            certFile: $pki->impostorCert,
            keyFile: $pki->impostorKey,
        );
        // Signed by the trusted CA, but a server certificate (serverAuth only).
        $server = new Client(
            'https://' . $this->stack->grpc,
            caFile: $pki->ca,
            certFile: $pki->serverCert,
            keyFile: $pki->serverKey,
        );
        foreach (['impostor' => $impostor, 'server certificate' => $server] as $name => $io) {
            try {
                $io->to('r1')->emit('untrusted');
                $this->fail("$name: expected the handshake to fail");
            } catch (UnavailableException $e) {
                $this->assertTrue($e->isLocal(), $name);
            }
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }
}
