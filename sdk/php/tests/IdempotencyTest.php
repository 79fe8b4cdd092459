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

        $first = $this->io->to('u:1')->emit('paid', 7, idempotencyKey: $key);
        $again = $this->io->to('u:1')->emit('paid', 7, idempotencyKey: $key);
        $other = $this->io->to('u:1')->emit('paid', 8, idempotencyKey: self::key('invoice'));

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

        $this->assertFalse($this->io->broadcast('news', idempotencyKey: $key)->duplicate);
        $again = $this->io->broadcast('news', idempotencyKey: $key);

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

        $this->assertFalse($this->io->serverSideEmit('sync', 'first', idempotencyKey: $key)->duplicate);
        $this->assertTrue($this->io->serverSideEmit('sync', 'first', idempotencyKey: $key)->duplicate);
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

        $first = $this->io->batch()->to('r1')->emit('one', idempotencyKey: $k1)->send();
        $this->assertFalse($first->results[0]->duplicate);

        $result = $this->io->batch()
            ->to('r1')->emit('one', idempotencyKey: $k1)
            ->to('r1')->emit('two', idempotencyKey: $k2)
            ->broadcast('three', idempotencyKey: $kb)
            ->to('r1')->emit('four')
            ->send();

        $this->assertSame([true, false, false, false], array_map(static fn ($r) => $r->duplicate, $result->results));
        $this->assertTrue($result->results[0]->isOk());
        $this->assertSame(2, $result->results[0]->receivers, 'the first result, repeated');
        $this->assertSame(3, $result->published, 'a duplicate is not published again');
        $this->assertSame(0, $result->failed);

        $again = $this->io->batch()->atomic()
            ->to('r1')->emit('two', idempotencyKey: $k2)
            ->broadcast('three', idempotencyKey: $kb)
            ->send();
        $this->assertSame([true, true], array_map(static fn ($r) => $r->duplicate, $again->results));

        // The same key twice in one batch: the second item is the duplicate.
        $k5 = self::key('item');
        $twice = $this->io->batch()
            ->to('r1')->emit('five', idempotencyKey: $k5)
            ->to('r1')->emit('five', idempotencyKey: $k5)
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

        $this->assertFalse($this->io->to('r1')->emit('e', 'full', idempotencyKey: $key)->duplicate);
        $this->assertFalse($narrow->to('r1')->emit('e', 'narrow', idempotencyKey: $key)->duplicate);
        $this->assertTrue($narrow->to('r1')->emit('e', 'narrow', idempotencyKey: $key)->duplicate);
        $this->assertTrue($this->io->to('r1')->emit('e', 'full', idempotencyKey: $key)->duplicate);

        $this->assertSame(['e', 'e'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame([['full'], ['narrow']], $this->argsOfEach($a['id'], 'e'));
    }

    public function testKeysAreCheckedBeforeSending(): void
    {
        $r1 = $this->io->to('r1');
        $cases = [
            'idempotency_key' => fn () => $r1->emit('x', idempotencyKey: "\xff"),
            'idempotency_key ' => fn () => $r1->socketsJoin('r2', idempotencyKey: "\xc3"),
            'items[1].broadcast.idempotency_key' => fn () => $this->io->batch()
                ->to('r1')->emit('x')->broadcast('y', idempotencyKey: "\xe2\x82"),
        ];
        foreach ($cases as $field => $call) {
            try {
                $call();
                $this->fail("expected a local error on $field");
            } catch (InvalidArgumentException $e) {
                $this->assertTrue($e->isLocal());
                $this->assertSame([trim($field)], $e->getFields());
            }
        }
        try {
            $r1->emit('x', 1, idempotencyKye: 'typo');
            $this->fail('an unknown named argument was accepted');
        } catch (\Error $e) {
            $this->assertSame('Unknown named parameter $idempotencyKye', $e->getMessage());
        }
        try {
            $r1->emit('x', idempotencyKey: 42);
            $this->fail('a non-string key was accepted');
        } catch (\TypeError $e) {
            $this->assertStringContainsString('idempotencyKey', $e->getMessage());
        }
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
