<?php

/**
 * Autoloader for using the emitgate SDK without Composer.
 *
 * `require '/path/to/sdk/php/autoload.php';` registers PSR-4 loading for the
 * hand-written `Emitgate\` classes (src/) and the generated
 * `Emitgate\Proto\` message classes (generated/Emitgate/Proto/). When the
 * Protobuf runtime (`Google\Protobuf\`, `GPBMetadata\Google\Protobuf\`) is
 * not loaded already, it is looked up on the include_path, which is where
 * Debian's php-google-protobuf installs it (/usr/share/php), or under the
 * directory named by the EMITGATE_PROTOBUF_PATH environment variable.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    static $roots = null;
    if ($roots === null) {
        $roots = [
            'Emitgate\\Proto\\' => [__DIR__ . '/generated/Emitgate/Proto/'],
            'Emitgate\\' => [__DIR__ . '/src/'],
        ];
        $runtime = [];
        $env = getenv('EMITGATE_PROTOBUF_PATH');
        if (is_string($env) && $env !== '') {
            $runtime[] = rtrim($env, '/') . '/';
        }
        foreach (explode(PATH_SEPARATOR, (string) get_include_path()) as $dir) {
            if ($dir !== '' && $dir !== '.') {
                $runtime[] = rtrim($dir, '/') . '/';
            }
        }
        $roots['Google\\Protobuf\\'] = array_map(static fn (string $d): string => $d . 'Google/Protobuf/', $runtime);
        $roots['GPBMetadata\\Google\\Protobuf\\'] = array_map(
            static fn (string $d): string => $d . 'GPBMetadata/Google/Protobuf/',
            $runtime
        );
    }
    foreach ($roots as $prefix => $dirs) {
        if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
            continue;
        }
        $relative = str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        foreach ($dirs as $dir) {
            $file = $dir . $relative;
            if (is_file($file)) {
                require $file;
                return;
            }
        }
        return;
    }
});
