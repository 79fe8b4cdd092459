<?php

declare(strict_types=1);

// Loads the SDK through its no-Composer autoloader (the same route as users
// without Composer), plus the test support classes.

require dirname(__DIR__) . '/autoload.php';

spl_autoload_register(static function (string $class): void {
    $prefix = 'Emitgate\\Tests\\';
    if (str_starts_with($class, $prefix)) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

register_shutdown_function([Emitgate\Tests\Support\Stack::class, 'stopAll']);
