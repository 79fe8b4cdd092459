<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Code;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\FieldViolation;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * The batch builder: BatchEmit with scoped items, partial failures and
 * atomic batches.
 */
final class BatchTest extends EndToEndTestCase
{
    public function testItemsArePublishedInOrderWithTheirOwnScope(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r2', 'muted']);
        $admin = $this->stack->connect('/admin', 1, ['r1']);

        $batch = $this->io->batch()
            ->to('r1')->emit('one', 1)
            ->to(['r1', 'r2'])->emit('two', new Binary("\xff"))
            ->except('muted')->compress(false)->broadcast('three', ['k' => 'v'])
            ->of('admin')->to('r1')->emit('four')
            ->broadcast('five');

        $this->assertCount(5, $batch);
        $result = $batch->send();

        $this->assertTrue($result->isOk());
        $this->assertSame(5, $result->published);
        $this->assertSame(0, $result->failed);
        $this->assertSame([2, 2, 2, 2, 2], array_map(static fn ($r) => $r->receivers, $result->results));
        $this->assertSame(10, $result->receivers);
        $this->assertSame([], $result->failures());

        $seen = $this->barrier([$a['id'], $b['id']]);
        $this->assertSame(['one', 'two', 'three', 'five'], $seen[$a['id']]);
        $this->assertSame(['two', 'five'], $seen[$b['id']]);
        $this->assertSame(['four'], $this->barrier([$admin['id']], '/admin')[$admin['id']]);
        $this->assertEquals([self::bin("\xff")], $this->argsOf($a['id'], 'two'));
        $this->assertEquals([(object) ['k' => 'v']], $this->argsOf($a['id'], 'three'));
    }

    public function testAVolatileItemIsDeliveredToAnIdleClient(): void
    {
        // Volatile packets may be dropped while a client's transport is busy,
        // so this batch holds only the volatile item.
        $a = $this->stack->connect('/', 0, ['r1']);

        $result = $this->io->batch()->volatile()->to('r1')->emit('maybe', 1)->send();

        $this->assertSame(1, $result->published);
        $this->assertSame(['maybe'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testABatchStartsFromTheClientScope(): void
    {
        $a = $this->stack->connect('/admin', 0, ['r1']);
        $b = $this->stack->connect('/admin', 1, ['r2']);

        $this->io->of('/admin')->to('r1')->batch()
            ->emit('scoped')
            ->to('r2')->emit('widened')
            ->send();

        $seen = $this->barrier([$a['id'], $b['id']], '/admin');
        $this->assertSame(['scoped', 'widened'], $seen[$a['id']]);
        $this->assertSame(['widened'], $seen[$b['id']]);
    }

    public function testInvalidItemsAreReportedAndTheOthersPublished(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        $result = $this->io->batch()
            ->to('r1')->emit('good-1')
            ->to('r1')->emit('disconnect')
            ->emit('no-room')
            ->to('r1')->emit('good-2')
            ->send();

        $this->assertFalse($result->isOk());
        $this->assertSame(2, $result->published);
        $this->assertSame(2, $result->failed);
        $this->assertSame([1, 2], array_keys($result->failures()));
        $this->assertSame(Code::OK, $result->results[0]->code);
        $this->assertSame(Code::INVALID_ARGUMENT, $result->results[1]->code);
        $this->assertSame(['items[1].emit.event'], $this->fields($result->results[1]->violations));
        $this->assertSame(['items[2].emit.rooms'], $this->fields($result->results[2]->violations));
        $this->assertNotSame('', $result->results[1]->message);
        $this->assertSame(0, $result->results[1]->receivers);
        $this->assertTrue($result->results[3]->isOk());
        $this->assertSame(['good-1', 'good-2'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAnAtomicBatchWithAnInvalidItemPublishesNothing(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        try {
            $this->io->batch()->atomic()
                ->to('r1')->emit('good')
                ->broadcast('connect')
                ->to('r1')->emit('')
                ->send();
            $this->fail('expected INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertFalse($e->isLocal());
            $this->assertSame(Code::INVALID_ARGUMENT, $e->getStatusCode());
            $this->assertSame(['items[1].broadcast.event', 'items[2].emit.event'], $e->getFields());
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAnAtomicBatchOfValidItemsIsPublished(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        $result = $this->io->batch()->atomic()->to('r1')->emit('x')->broadcast('y')->send();

        $this->assertSame(2, $result->published);
        $this->assertSame(['x', 'y'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testABatchOverTheGatewayLimitIsChunkedAndDeliveredInOrder(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r1']);
        $batch = $this->io->batch();
        for ($i = 0; $i < 2500; $i++) {
            // One invalid item in the second chunk, reported with its batch index.
            $batch->to('r1')->emit($i === 1500 ? 'connect' : 'item', $i);
        }

        $result = $batch->send();

        $this->assertSame(3, $result->requests, '1000 + 1000 + 500 items');
        $this->assertCount(2500, $result->results);
        $this->assertSame(2499, $result->published);
        $this->assertSame(1, $result->failed);
        $this->assertSame([1500], array_keys($result->failures()));
        $this->assertSame(['items[1500].emit.event'], $this->fields($result->results[1500]->violations));
        $this->assertSame(2 * 2499, $result->receivers);
        $expected = array_values(array_diff(range(0, 2499), [1500]));
        foreach ([$a, $b] as $client) {
            $events = $this->stack->eventsUntil($client['id'], 'item', 2499, 20000);
            $this->assertSame($expected, array_map(static fn ($e) => $e['args'][0], $events));
        }
    }

    public function testAnEmptyBatch(): void
    {
        $result = $this->io->batch()->send();

        $this->assertSame([], $result->results);
        $this->assertSame(0, $result->published);
        $this->assertSame(0, $result->receivers);
    }

    public function testArgumentsAreCheckedWhenAnItemIsAdded(): void
    {
        $batch = $this->io->batch()->to('r1')->emit('fine');
        try {
            $batch->to('r1')->emit('bad', 1, NAN);
            $this->fail('expected a local INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertSame(['items[1].emit.args[1]'], $e->getFields());
        }
        $this->assertCount(1, $batch);
    }

    /**
     * @param list<FieldViolation> $violations
     * @return list<string>
     */
    private function fields(array $violations): array
    {
        return array_map(static fn (FieldViolation $v): string => $v->field, $violations);
    }
}
