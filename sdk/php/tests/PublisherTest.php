<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Code;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Publisher;
use Emitgate\PublishResult;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * The batching Publisher against the real gateway and Socket.IO servers:
 * order, chunking, per-event results and errors, close, the buffer.
 */
final class PublisherTest extends EndToEndTestCase
{
    public function testEventsReachTheClientsInPublishOrder(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r2']);
        $publisher = $this->io->publisher();

        $handles = [];
        for ($i = 0; $i < 20; $i++) {
            $handles[] = $publisher->to($i % 2 === 0 ? 'r1' : 'r2')->emit('n', $i, ['even' => $i % 2 === 0]);
        }
        $handles[] = $publisher->broadcast('all', new Binary("\x01"));
        $this->assertFalse($handles[0]->isDone(), 'nothing is sent before the batch is full or flushed');
        $this->assertSame(21, $publisher->pending());

        $publisher->flush();

        $this->assertSame(0, $publisher->pending());
        foreach ($handles as $handle) {
            $this->assertTrue($handle->isDone());
            $this->assertSame(2, $handle->get()->receivers, 'both servers subscribe');
            $this->assertFalse($handle->get()->duplicate);
        }
        foreach ([[$a, 0], [$b, 1]] as [$client, $parity]) {
            $expected = [];
            for ($i = $parity; $i < 20; $i += 2) {
                $expected[] = ['event' => 'n', 'args' => [$i, (object) ['even' => $parity === 0]]];
            }
            $expected[] = ['event' => 'all', 'args' => [self::bin("\x01")]];
            $this->assertEquals($expected, $this->stack->eventsUntil($client['id'], 'all'));
        }
    }

    public function testTwentyFiveHundredEventsInOneFlushArriveChunked(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r1']);
        $publisher = $this->io->publisher();

        $handles = [];
        for ($i = 0; $i < 2500; $i++) {
            $handles[] = $publisher->to('r1')->emit('item', $i);
        }
        // Two full batches of 1000 went out on their own; 500 wait for flush().
        $this->assertTrue($handles[1999]->isDone());
        $this->assertFalse($handles[2000]->isDone());
        $this->assertSame(500, $publisher->pending());
        $publisher->flush();

        foreach ($handles as $handle) {
            $this->assertSame(2, $handle->get()->receivers);
        }
        foreach ([$a, $b] as $client) {
            $events = $this->stack->eventsUntil($client['id'], 'item', 2500, 20000);
            $this->assertSame(range(0, 2499), array_map(static fn ($e) => $e['args'][0], $events));
        }
    }

    public function testAPerEventErrorReachesOnlyItsHandle(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $publisher = $this->io->publisher();

        $good1 = $publisher->to('r1')->emit('good-1');
        $reserved = $publisher->to('r1')->emit('connect');          // refused by the gateway
        $noRoom = $publisher->emit('no-room');                      // refused by the gateway
        $local = $publisher->to('r1')->emit('bad-arg', 1, NAN);    // refused by the SDK
        $rooms = $publisher->to('r1')->broadcast('bad-scope');      // refused by the SDK
        $good2 = $publisher->to('r1')->emit('good-2');

        $this->assertTrue($local->isDone(), 'an event the SDK refuses fails at once');
        $this->assertTrue($rooms->isDone());
        $this->assertFalse($good1->isDone());
        $publisher->flush();

        $this->assertTrue($good1->get()->isOk());
        $this->assertTrue($good2->get()->isOk());
        $this->assertNull($good2->getError());
        $failed = [
            [$reserved, ['event'], false],
            [$noRoom, ['rooms'], false],
            [$local, ['args[1]'], true],
            [$rooms, ['rooms'], true],
        ];
        foreach ($failed as [$handle, $fields, $isLocal]) {
            try {
                $handle->get();
                $this->fail('expected INVALID_ARGUMENT on ' . implode(',', $fields));
            } catch (InvalidArgumentException $e) {
                $this->assertSame(Code::INVALID_ARGUMENT, $e->getStatusCode());
                $this->assertSame($fields, $e->getFields());
                $this->assertSame($isLocal, $e->isLocal());
                $this->assertSame($e, $handle->getError());
            }
        }
        $this->assertSame(['good-1', 'good-2'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testGetBeforeTheBatchIsSentFlushes(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $publisher = $this->io->publisher();
        $first = $publisher->to('r1')->emit('first');
        $second = $publisher->to('r1')->emit('second');

        $this->assertSame(2, $first->get()->receivers);

        $this->assertTrue($second->isDone(), 'the whole buffer was sent');
        $this->assertSame(['first', 'second'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testCloseDeliversEverythingBufferedAndRefusesMore(): void
    {
        $a = $this->stack->connect('/admin', 0, ['r1']);
        $publisher = $this->io->of('/admin')->publisher();
        $handle = $publisher->to('r1')->emit('before-close');

        $publisher->close();

        $this->assertTrue($handle->isDone());
        $this->assertSame(['before-close'], $this->barrier([$a['id']], '/admin')[$a['id']]);
        $this->expectException(\LogicException::class);
        $publisher->to('r1')->emit('after-close');
    }

    public function testThePublisherIsFlushedWhenItGoesAway(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $publisher = new Publisher($this->io);
        $derived = $publisher->to('r1');
        $handle = $derived->emit('kept');
        unset($publisher);
        $this->assertFalse($handle->isDone(), 'a derived publisher still holds the buffer');

        unset($derived);

        $this->assertTrue($handle->isDone());
        $this->assertSame(2, $handle->get()->receivers);
        $this->assertSame(['kept'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAFullBufferBlocksUntilTheBufferedEventsAreAnswered(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $publisher = $this->io->publisher(['maxItems' => 10, 'buffer' => 3]);
        $handles = array_map(static fn (int $i): PublishResult => $publisher->to('r1')->emit("e$i"), range(0, 2));
        $this->assertFalse($handles[0]->isDone());

        $handles[] = $publisher->to('r1')->emit('e3');

        $this->assertTrue($handles[0]->isDone() && $handles[2]->isDone(), 'the first three were sent first');
        $this->assertFalse($handles[3]->isDone());
        $this->assertSame(1, $publisher->pending());
        $publisher->flush();
        $this->assertSame(['e0', 'e1', 'e2', 'e3'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAFullBufferFailsFastWhenConfigured(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $publisher = $this->io->publisher(['maxItems' => 10, 'buffer' => 3, 'onFull' => Publisher::ON_FULL_ERROR]);
        for ($i = 0; $i < 3; $i++) {
            $publisher->to('r1')->emit("e$i");
        }

        try {
            $publisher->to('r1')->emit('refused');
            $this->fail('expected RESOURCE_EXHAUSTED');
        } catch (ResourceExhaustedException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertSame(Code::RESOURCE_EXHAUSTED, $e->getStatusCode());
        }
        $this->assertSame(3, $publisher->pending());
        $publisher->flush();
        $publisher->to('r1')->emit('accepted')->get();
        $this->assertSame(['e0', 'e1', 'e2', 'accepted'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testABatchIsSentWhenItReachesMaxBytes(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $publisher = $this->io->publisher(['maxBytes' => 1000]);
        $payload = str_repeat('x', 400);

        $first = $publisher->to('r1')->emit('big', $payload);
        $second = $publisher->to('r1')->emit('big', $payload);
        $this->assertFalse($first->isDone());
        $third = $publisher->to('r1')->emit('big', $payload);   // over 1000 bytes with the other two

        $this->assertTrue($first->isDone() && $second->isDone());
        $this->assertFalse($third->isDone());
        $publisher->flush();
        $this->assertSame(['big', 'big', 'big'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testIdempotencyKeysAreKeptPerEvent(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $key = 'publisher-' . bin2hex(random_bytes(6));
        $publisher = $this->io->publisher();

        $first = $publisher->to('r1')->idempotencyKey($key)->emit('once');
        $again = $publisher->to('r1')->idempotencyKey($key)->emit('once');
        $other = $publisher->to('r1')->emit('unkeyed');
        $publisher->flush();

        $this->assertFalse($first->get()->duplicate);
        $this->assertTrue($again->get()->duplicate);
        $this->assertFalse($other->get()->duplicate);
        $this->assertSame(['once', 'unkeyed'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testOptionsAreChecked(): void
    {
        foreach ([['maxItems' => 0], ['maxBytes' => 0], ['buffer' => 0], ['onFull' => 'drop']] as $options) {
            try {
                $this->io->publisher($options);
                $this->fail('accepted ' . json_encode($options));
            } catch (\InvalidArgumentException $e) {
                $this->assertStringContainsString((string) array_key_first($options), $e->getMessage());
            }
        }
    }
}
