package resgraph.k8s;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.context.annotation.Property;
import io.micronaut.context.annotation.Value;
import io.micronaut.core.annotation.Creator;
import io.micronaut.core.bind.annotation.Bindable;
import io.micronaut.core.convert.ConversionService;
import io.micronaut.grpc.server.GrpcServerConfiguration;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Parameter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The properties a class reads, found by reflection on its compiled form as Micronaut binds it: a
 * {@code @ConfigurationProperties} record's components (under its prefix, kebab-case, or as
 * {@code @Property} names them; defaults from {@code @Bindable}), the {@code @Property} parameters
 * of its {@code @Creator}, a bean's {@code @Value("${name:default}")} parameters. micronaut-grpc's
 * server configuration is its own: of it the manifests set the port alone.
 */
final class ConfigurationCatalog {

  /** A property a class reads; {@code defaultValue} null when it has none. */
  record Read(String name, String defaultValue, Class<?> owner) {
    /** The environment variable Micronaut takes it from: upper case, '.' and '-' as '_'. */
    String variable() {
      return name.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
    }
  }

  private ConfigurationCatalog() {}

  static List<Read> reads(Class<?> c) {
    if (c == GrpcServerConfiguration.class) {
      return List.of(new Read(GrpcServerConfiguration.PORT, Integer.toString(GrpcServerConfiguration.DEFAULT_PORT), c));
    }
    List<Read> reads = new ArrayList<>();
    ConfigurationProperties prefix = c.getAnnotation(ConfigurationProperties.class);
    if (prefix != null) {
      Constructor<?> binding = binding(c);
      for (int i = 0; i < binding.getParameterCount(); i++) reads.add(read(prefix.value(), binding, i));
    }
    for (Constructor<?> k : c.getDeclaredConstructors()) {
      for (Parameter p : k.getParameters()) {
        Value value = p.getAnnotation(Value.class);
        if (value != null) reads.add(placeholder(value.value(), c));
      }
    }
    return reads;
  }

  /** Whether a class reads any configuration: what {@link #reads} finds something in. */
  static boolean readsConfiguration(Class<?> c) {
    return c.isAnnotationPresent(ConfigurationProperties.class) || Arrays.stream(c.getDeclaredConstructors())
        .flatMap(k -> Arrays.stream(k.getParameters())).anyMatch(p -> p.isAnnotationPresent(Value.class));
  }

  /**
   * A configuration record built from these property values (and its defaults), so that its own
   * checks run on them: a required property unset, a value out of range, fail as at the service's
   * start, with the record's message.
   */
  static Object bind(Class<?> record, Map<String, String> values) {
    Constructor<?> binding = binding(record);
    ConfigurationProperties prefix = record.getAnnotation(ConfigurationProperties.class);
    Object[] args = new Object[binding.getParameterCount()];
    for (int i = 0; i < args.length; i++) {
      Read read = read(prefix.value(), binding, i);
      String value = values.getOrDefault(read.name(), read.defaultValue());
      args[i] = value == null ? null : ConversionService.SHARED.convertRequired(value, binding.getParameterTypes()[i]);
    }
    try {
      binding.setAccessible(true);
      return binding.newInstance(args);
    } catch (InvocationTargetException e) {
      throw new IllegalArgumentException(e.getCause().getMessage(), e.getCause());
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot build " + record.getName(), e);
    }
  }

  /** The constructor Micronaut binds: the {@code @Creator} one, else the record's canonical one. */
  private static Constructor<?> binding(Class<?> c) {
    for (Constructor<?> k : c.getDeclaredConstructors()) if (k.isAnnotationPresent(Creator.class)) return k;
    if (!c.isRecord()) throw new IllegalStateException(c.getName() + ": a configuration that is not a record; teach ConfigurationCatalog");
    Class<?>[] components = Arrays.stream(c.getRecordComponents()).map(rc -> rc.getType()).toArray(Class<?>[]::new);
    try {
      return c.getDeclaredConstructor(components);
    } catch (NoSuchMethodException e) {
      throw new IllegalStateException(c.getName() + " has no canonical constructor", e);
    }
  }

  /** The property the binding constructor's parameter {@code i} takes: a record component's, or the one it names. */
  private static Read read(String prefix, Constructor<?> binding, int i) {
    Parameter p = binding.getParameters()[i];
    Property named = p.getAnnotation(Property.class);
    Bindable bindable = p.getAnnotation(Bindable.class);
    String defaultValue = bindable == null || bindable.defaultValue().isEmpty() ? null : bindable.defaultValue();
    Class<?> owner = binding.getDeclaringClass();
    if (named != null) return new Read(named.name(), defaultValue, owner);
    if (!owner.isRecord() || binding.isAnnotationPresent(Creator.class)) {
      throw new IllegalStateException(owner.getName() + ": a parameter of its @Creator names no @Property");
    }
    return new Read(prefix + "." + kebab(owner.getRecordComponents()[i].getName()), defaultValue, owner);
  }

  /** "${resgraph.health.port}" or "${name:default}". */
  private static Read placeholder(String expression, Class<?> owner) {
    if (!expression.startsWith("${") || !expression.endsWith("}")) throw new IllegalStateException(owner.getName() + ": @Value " + expression);
    String inner = expression.substring(2, expression.length() - 1);
    int colon = inner.indexOf(':');
    return colon < 0 ? new Read(inner, null, owner) : new Read(inner.substring(0, colon), inner.substring(colon + 1), owner);
  }

  private static String kebab(String camel) {
    return camel.replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase(Locale.ROOT);
  }
}
