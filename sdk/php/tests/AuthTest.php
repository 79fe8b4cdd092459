<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Code;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\PermissionDeniedException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Exception\UnauthenticatedException;
use Emitgate\Exception\UnavailableException;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\SecuredStack;

/**
 * API keys against a gateway configured with them (SecuredStack::keys()):
 * the key the client sends, UNAUTHENTICATED, PERMISSION_DENIED for each
 * scope, per batch item, and RESOURCE_EXHAUSTED with the delay the gateway
 * asks for. Nothing refused is delivered.
 */
final class AuthTest extends EndToEndTestCase
{
    protected static function gatewayArgs(): array
    {
        return SecuredStack::keys();
    }

    protected function client(): Client
    {
        return $this->keyed('full');
    }

    public function testTheClientsApiKeyIsAccepted(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        $this->assertSame(2, $this->io->to('r1')->emit('with-key', 'ok')->receivers);
        $this->assertSame(2, $this->io->to('r1')->socketsJoin('r2')->receivers);
        $this->assertSame(2, $this->io->to('r2')->emit('joined')->receivers);

        $this->assertSame(['with-key', 'joined'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame(['ok'], $this->argsOf($a['id'], 'with-key'));
        $this->assertEqualsCanonicalizing([$a['sid'], 'r1', 'r2'], $this->stack->rooms($a['id']));
    }

    public function testEveryCallWithoutAKeyIsUnauthenticated(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = new Client($this->stack->grpc);
        $calls = [
            'emit' => fn () => $io->to('r1')->emit('no-key'),
            'broadcast' => fn () => $io->broadcast('no-key'),
            'socketsJoin' => fn () => $io->to('r1')->socketsJoin('joined'),
            'socketsLeave' => fn () => $io->to('r1')->socketsLeave('r1'),
            'disconnectSockets' => fn () => $io->to('r1')->disconnectSockets(true),
            'serverSideEmit' => fn () => $io->serverSideEmit('no-key'),
            'batch' => fn () => $io->batch()->to('r1')->emit('no-key')->send(),
        ];
        foreach ($calls as $name => $call) {
            $e = $this->unauthenticated($call, $name);
            $this->assertStringContainsString('Bearer', $e->getStatusMessage(), $name);
        }

        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
        $this->assertEqualsCanonicalizing([$a['sid'], 'r1'], $this->stack->rooms($a['id']));
        $this->assertTrue($this->stack->request('GET', '/clients/' . $a['id'])['connected']);
    }

    public function testAWrongKeyIsUnauthenticated(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $full = SecuredStack::secret('full');
        foreach (['egk_wrong', $full . 'x', hash('sha256', $full)] as $wrong) {
            $e = $this->unauthenticated(fn () => (new Client($this->stack->grpc, apiKey: $wrong))->to('r1')->emit('x'));
            $this->assertSame(Code::UNAUTHENTICATED, $e->getStatusCode());
        }
        $e = $this->unauthenticated(fn () => (new Client($this->stack->grpc, apiKey: 'egk_wrong'))->broadcast('x'));
        $this->assertStringContainsString('unknown API key', $e->getStatusMessage());
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testATargetOutOfTheKeysScopeIsPermissionDenied(): void
    {
        $narrow = $this->keyed('narrow');

        $e = $this->denied(fn () => $narrow->target('down')->to('r1')->emit('x'));
        $this->assertStringContainsString('target "down"', $e->getStatusMessage());
        $this->assertStringContainsString('"narrow"', $e->getStatusMessage());

        // The same call with a key that may use the target reaches it (and
        // finds its Redis down): the refusal above came from the scope.
        try {
            $this->io->target('down')->to('r1')->emit('x');
            $this->fail('expected UNAVAILABLE');
        } catch (UnavailableException $e) {
            $this->assertFalse($e->isLocal());
        }
    }

    public function testANamespaceOutOfTheKeysScopeIsPermissionDenied(): void
    {
        $admin = $this->stack->connect('/admin', 0, ['r1']);
        $billing = $this->stack->connect('/billing/eu', 1, ['r1']);
        $narrow = $this->keyed('narrow');

        $e = $this->denied(fn () => $narrow->of('/admin')->to('r1')->emit('x'));
        $this->assertStringContainsString('namespace "/admin"', $e->getStatusMessage());
        // `/billing*` is in scope.
        $this->assertSame(2, $narrow->of('/billing/eu')->to('r1')->emit('invoice', 7)->receivers);

        $this->assertSame([], $this->barrier([$admin['id']], '/admin')[$admin['id']]);
        $this->assertSame(['invoice'], $this->barrier([$billing['id']], '/billing/eu')[$billing['id']]);
    }

    public function testAnRpcOutOfTheKeysScopeIsPermissionDenied(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $narrow = $this->keyed('narrow');

        $calls = [
            'DisconnectSockets' => fn () => $narrow->to('r1')->disconnectSockets(true),
            'SocketsJoin' => fn () => $narrow->to('r1')->socketsJoin('r2'),
            'Broadcast' => fn () => $narrow->broadcast('x'),
            'ServerSideEmit' => fn () => $narrow->serverSideEmit('x'),
        ];
        foreach ($calls as $rpc => $call) {
            $e = $this->denied($call, $rpc);
            $this->assertStringContainsString("may not call $rpc", $e->getStatusMessage());
        }
        // Emit is in scope.
        $this->assertSame(2, $narrow->to('r1')->emit('allowed')->receivers);

        $this->assertSame(['allowed'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertEqualsCanonicalizing([$a['sid'], 'r1'], $this->stack->rooms($a['id']));
        $this->assertTrue($this->stack->request('GET', '/clients/' . $a['id'])['connected']);
    }

    public function testABatchItemOutOfScopeIsRefusedOnItsOwn(): void
    {
        $a = $this->stack->connect('/', 0, ['ok']);
        $admin = $this->stack->connect('/admin', 1, ['r1']);
        $narrow = $this->keyed('narrow');

        $result = $narrow->batch()
            ->to('ok')->emit('first')
            ->of('/admin')->to('r1')->emit('refused')
            ->target('down')->to('ok')->emit('refused-target')
            ->to('ok')->emit('last')
            ->send();

        $this->assertSame(2, $result->published);
        $this->assertSame(2, $result->failed);
        $this->assertSame([0, 3], array_keys(array_filter($result->results, static fn ($r) => $r->isOk())));
        $failures = $result->failures();
        $this->assertSame([1, 2], array_keys($failures));
        foreach ($failures as $item) {
            $this->assertSame(Code::PERMISSION_DENIED, $item->code);
            $this->assertSame(0, $item->receivers);
            $this->assertSame([], $item->violations);
        }
        $this->assertStringContainsString('namespace "/admin"', $failures[1]->message);
        $this->assertStringContainsString('target "down"', $failures[2]->message);

        // Atomic: the whole batch is refused, naming the item.
        $atomic = $narrow->batch()->atomic()
            ->to('ok')->emit('atomic-first')
            ->of('/admin')->to('r1')->emit('atomic-refused');
        $e = $this->denied(fn () => $atomic->send());
        $this->assertStringContainsString('items[1]', $e->getStatusMessage());

        $this->assertSame(['first', 'last'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame([], $this->barrier([$admin['id']], '/admin')[$admin['id']]);
    }

    public function testOverItsRateAKeyIsResourceExhaustedWithTheDelayToWait(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $slow = $this->keyed('slow');
        $batch = $slow->batch();
        for ($i = 1; $i <= SecuredStack::BURST; $i++) {
            $batch->to('r1')->emit("burst-$i");
        }
        $this->assertSame(SecuredStack::BURST, $batch->send()->published, 'a batch spends one event per item');

        try {
            $slow->to('r1')->emit('over');
            $this->fail('expected RESOURCE_EXHAUSTED');
        } catch (ResourceExhaustedException $e) {
            $this->assertSame(Code::RESOURCE_EXHAUSTED, $e->getStatusCode());
            $this->assertSame(8, $e->getCode());
            $this->assertFalse($e->isLocal());
            $this->assertTrue($e->isRetryable());
            $this->assertStringContainsString('slow', $e->getStatusMessage());
            $delay = $e->getRetryDelay();
            $this->assertNotNull($delay, 'google.rpc.RetryInfo');
            $this->assertGreaterThan(0.0, $delay);
            $this->assertLessThanOrEqual(1.0 / SecuredStack::RATE, $delay);
        }
        // Other keys have their own budget.
        $this->assertSame(2, $this->io->to('r1')->emit('other-key')->receivers);
        // Waiting as long as the gateway said is enough.
        usleep((int) ceil($delay * 1e6) + 20_000);
        $this->assertSame(2, $slow->to('r1')->emit('after-waiting')->receivers);

        $this->assertSame(
            ['burst-1', 'burst-2', 'burst-3', 'other-key', 'after-waiting'],
            $this->barrier([$a['id']])[$a['id']]
        );
    }

    private function keyed(string $id): Client
    {
        return new Client($this->stack->grpc, apiKey: SecuredStack::secret($id));
    }

    private function unauthenticated(callable $call, string $what = ''): UnauthenticatedException
    {
        try {
            $call();
        } catch (UnauthenticatedException $e) {
            $this->assertSame(16, $e->getCode(), $what);
            $this->assertFalse($e->isLocal(), $what);
            $this->assertFalse($e->isRetryable(), $what);
            $this->assertNull($e->getRetryDelay(), $what);
            return $e;
        } catch (EmitgateException $e) {
            $this->fail("$what: expected UNAUTHENTICATED, got " . $e->getMessage());
        }
        $this->fail("$what: expected UNAUTHENTICATED, the call succeeded");
    }

    private function denied(callable $call, string $what = ''): PermissionDeniedException
    {
        try {
            $call();
        } catch (PermissionDeniedException $e) {
            $this->assertSame(Code::PERMISSION_DENIED, $e->getStatusCode(), $what);
            $this->assertSame(7, $e->getCode(), $what);
            $this->assertFalse($e->isLocal(), $what);
            $this->assertFalse($e->isRetryable(), $what);
            return $e;
        } catch (EmitgateException $e) {
            $this->fail("$what: expected PERMISSION_DENIED, got " . $e->getMessage());
        }
        $this->fail("$what: expected PERMISSION_DENIED, the call succeeded");
    }
}
