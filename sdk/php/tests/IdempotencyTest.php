<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\SecuredStack;

/**
 * Idempotency keys against the real gateway: a repeated key publishes
 * nothing and answers the first result with `duplicate` true, for every
 * operation and per batch item; keys are scoped per API key.
 */
final class IdempotencyTest extends EndToEndTestCase
{
    protected static function gatewayArgs(): array
    {
        return SecuredStack::keys();
    }

    protected function client(): Client
    {
        return new Client($this->stack->grpc, apiKey: SecuredStack::secret('full'));
    }

    public function testARepeatedKeyIsDeliveredOnce(): void
    {
        $a = $this->stack->connect('/', 0, ['u:1']);
        $key = self::key('invoice');

        $first = $this->io->to('u:1')->idempotencyKey($key)->emit('paid', 7);
        $again = $this->io->to('u:1')->idempotencyKey($key)->emit('paid', 7);
        $other = $this->io->to('u:1')->idempotencyKey(self::key('invoice'))->emit('paid', 8);

        $this->assertFalse($first->duplicate);
        $this->assertSame(2, $first->receivers);
        $this->assertNull($first->streamId);
        $this->assertTrue($again->duplicate);
        $this->assertSame($first->receivers, $again->receivers, 'the first result, repeated');
        $this->assertFalse($other->duplicate);
        $this->assertSame(['paid', 'paid'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame([[7], [8]], $this->argsOfEach($a['id'], 'paid'));
    }

    public function testARepeatedBroadcastIsDeliveredOnce(): void
    {
        $a = $this->stack->connect('/', 1);
        $key = self::key('news');

        $this->assertFalse($this->io->idempotencyKey($key)->broadcast('news')->duplicate);
        $again = $this->io->idempotencyKey($key)->broadcast('news');

        $this->assertTrue($again->duplicate);
        $this->assertSame(2, $again->receivers);
        $this->assertSame(['news'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testARepeatedJoinOrLeaveDoesNothing(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $join = self::key('join');
        $leave = self::key('leave');

        $this->assertFalse($this->io->to('r1')->socketsJoin('r2', idempotencyKey: $join)->duplicate);
        $this->io->to('r1')->socketsLeave('r2');
        $again = $this->io->to('r1')->socketsJoin('r2', idempotencyKey: $join);
        $this->assertTrue($again->duplicate);
        $this->assertSame(2, $again->receivers);
        $this->assertEqualsCanonicalizing([$a['sid'], 'r1'], $this->rooms($a));

        $this->assertFalse($this->io->to('r1')->socketsLeave('r1', idempotencyKey: $leave)->duplicate);
        $this->io->in($a['sid'])->socketsJoin('r1');
        $this->assertTrue($this->io->in($a['sid'])->socketsLeave('r1', idempotencyKey: $leave)->duplicate);
        $this->assertEqualsCanonicalizing([$a['sid'], 'r1'], $this->rooms($a));
    }

    public function testARepeatedDisconnectDoesNothing(): void
    {
        $key = self::key('kick');
        $first = $this->stack->connect('/', 0, ['kick']);
        $this->assertFalse($this->io->to('kick')->disconnectSockets(true, idempotencyKey: $key)->duplicate);
        $this->assertSame('io server disconnect', $this->stack->disconnectReason($first['id']));

        $second = $this->stack->connect('/', 1, ['kick']);
        $this->assertTrue($this->io->to('kick')->disconnectSockets(true, idempotencyKey: $key)->duplicate);

        $this->assertSame([], $this->barrier([$second['id']])[$second['id']]);
        $this->assertTrue($this->stack->request('GET', '/clients/' . $second['id'])['connected']);
    }

    public function testARepeatedServerSideEmitReachesTheServersOnce(): void
    {
        $this->stack->listen('/', 'sync');
        $key = self::key('sync');

        $this->assertFalse($this->io->idempotencyKey($key)->serverSideEmit('sync', 'first')->duplicate);
        $this->assertTrue($this->io->idempotencyKey($key)->serverSideEmit('sync', 'first')->duplicate);
        $this->io->serverSideEmit('sync', 'last');

        // Each server gets the events in publish order, so four events hold
        // both "last" ones only if no second "first" was published.
        $args = array_column($this->stack->serverEvents('/', 'sync', 4), 'args');
        $this->assertEqualsCanonicalizing([['first'], ['first'], ['last'], ['last']], $args);
    }

    public function testBatchItemsAreDuplicatesOnTheirOwn(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $k1 = self::key('item');
        $k2 = self::key('item');
        $kb = self::key('item');

        $first = $this->io->batch()->to('r1')->idempotencyKey($k1)->emit('one')->send();
        $this->assertFalse($first->results[0]->duplicate);

        $result = $this->io->batch()
            ->to('r1')->idempotencyKey($k1)->emit('one')
            ->to('r1')->idempotencyKey($k2)->emit('two')
            ->idempotencyKey($kb)->broadcast('three')
            ->to('r1')->emit('four')
            ->send();

        $this->assertSame([true, false, false, false], array_map(static fn ($r) => $r->duplicate, $result->results));
        $this->assertTrue($result->results[0]->isOk());
        $this->assertSame(2, $result->results[0]->receivers, 'the first result, repeated');
        $this->assertSame(3, $result->published, 'a duplicate is not published again');
        $this->assertSame(0, $result->failed);

        $again = $this->io->batch()->atomic()
            ->to('r1')->idempotencyKey($k2)->emit('two')
            ->idempotencyKey($kb)->broadcast('three')
            ->send();
        $this->assertSame([true, true], array_map(static fn ($r) => $r->duplicate, $again->results));

        // The same key twice in one batch: the second item is the duplicate.
        $k5 = self::key('item');
        $twice = $this->io->batch()
            ->to('r1')->idempotencyKey($k5)->emit('five')
            ->to('r1')->idempotencyKey($k5)->emit('five')
            ->send();
        $this->assertSame([false, true], array_map(static fn ($r) => $r->duplicate, $twice->results));
        $this->assertSame(1, $twice->published);

        $this->assertSame(['one', 'two', 'three', 'four', 'five'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testKeysAreScopedPerApiKey(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $key = self::key('shared');
        $narrow = new Client($this->stack->grpc, apiKey: SecuredStack::secret('narrow'));

        $this->assertFalse($this->io->to('r1')->idempotencyKey($key)->emit('e', 'full')->duplicate);
        $this->assertFalse($narrow->to('r1')->idempotencyKey($key)->emit('e', 'narrow')->duplicate);
        $this->assertTrue($narrow->to('r1')->idempotencyKey($key)->emit('e', 'narrow')->duplicate);
        $this->assertTrue($this->io->to('r1')->idempotencyKey($key)->emit('e', 'full')->duplicate);

        $this->assertSame(['e', 'e'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame([['full'], ['narrow']], $this->argsOfEach($a['id'], 'e'));
    }

    public function testKeysAreCheckedBeforeSending(): void
    {
        $r1 = $this->io->to('r1');
        $cases = [
            'emit' => fn () => $r1->idempotencyKey("\xff")->emit('x'),
            'socketsJoin' => fn () => $r1->socketsJoin('r2', idempotencyKey: "\xc3"),
            'a batch item' => fn () => $this->io->batch()
                ->to('r1')->emit('x')->idempotencyKey("\xe2\x82")->broadcast('y'),
        ];
        foreach ($cases as $what => $call) {
            try {
                $call();
                $this->fail("expected a local error for $what");
            } catch (InvalidArgumentException $e) {
                $this->assertTrue($e->isLocal());
                $this->assertSame(['idempotency_key'], $e->getFields());
            }
        }
        try {
            $r1->emit('x', 1, idempotencyKye: 'typo');
            $this->fail('an unknown named argument was accepted');
        } catch (\Error $e) {
            $this->assertSame('Unknown named parameter $idempotencyKye', $e->getMessage());
        }
    }

    public function testTheNamedArgumentOfEarlierVersionsIsRefusedNotSent(): void
    {
        // Event arguments are positional: the named `idempotencyKey:` of
        // earlier versions is neither taken as the key nor sent as an
        // argument; the call fails before sending and says what to use.
        $a = $this->stack->connect('/', 0, ['r1']);
        $calls = [
            fn () => $this->io->to('r1')->emit('x', 1, idempotencyKey: 'k'),
            fn () => $this->io->broadcast('x', idempotencyKey: 'k'),
            fn () => $this->io->serverSideEmit('x', idempotencyKey: 'k'),
            fn () => $this->io->batch()->to('r1')->emit('x', idempotencyKey: 'k'),
            fn () => $this->io->to('r1')->emit('x', ...['idempotencyKey' => 'k']),
        ];
        foreach ($calls as $i => $call) {
            try {
                $call();
                $this->fail("call $i was accepted");
            } catch (\Error $e) {
                $this->assertStringContainsString('->idempotencyKey(', $e->getMessage());
            }
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testBothFormsOfAJoinKeyMustAgree(): void
    {
        $key = self::key('join');
        $r1 = $this->io->to('r1');
        $this->assertFalse($r1->idempotencyKey($key)->socketsJoin('r2', idempotencyKey: $key)->duplicate);
        $this->assertTrue($r1->idempotencyKey($key)->socketsJoin('r2')->duplicate, 'the fluent key is the same key');
        try {
            $r1->idempotencyKey($key)->socketsJoin('r2', idempotencyKey: self::key('other'));
            $this->fail('two different keys were accepted');
        } catch (InvalidArgumentException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertSame(['idempotency_key'], $e->getFields());
        }
    }

    public function testAKeyIsForOneEventNotForABatch(): void
    {
        $this->expectException(\LogicException::class);
        $this->io->to('r1')->idempotencyKey('k')->batch();
    }

    /**
     * A key not used before in this run.
     */
    private static function key(string $prefix): string
    {
        return $prefix . '-' . bin2hex(random_bytes(6));
    }

    /**
     * The arguments of every $event the client has received so far.
     *
     * @return list<list<mixed>>
     */
    private function argsOfEach(string $clientId, string $event): array
    {
        $events = array_filter($this->stack->events($clientId), static fn ($e) => $e['event'] === $event);
        return array_values(array_column($events, 'args'));
    }

    /**
     * @param array{id: string, sid: string} $client
     * @return list<string>
     */
    private function rooms(array $client): array
    {
        return $this->stack->rooms($client['id']);
    }
}
